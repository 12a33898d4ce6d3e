/**
 * Open chunked uploads, remembered so that an interrupted push resumes them. One small JSON file
 * per (registry, repository, digest) under `$XDG_STATE_HOME/2dfs-push/uploads` (default
 * `~/.local/state/2dfs-push/uploads`), written after every committed chunk and removed when the
 * blob is complete. The Location is the registry's latest (distribution signs the offset into
 * it and refuses an older one).
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

export interface UploadSession {
  registry: string;
  repository: string;
  digest: string;
  /** Absolute upload URL to continue at. */
  location: string;
  /** Bytes the registry has committed. */
  offset: number;
  chunkSize: number;
  updatedAt: string;
}

export function defaultUploadStateDir(env: Record<string, string | undefined> = process.env): string {
  const base = env.XDG_STATE_HOME || join(env.HOME || homedir(), ".local", "state");
  return join(base, "2dfs-push", "uploads");
}

export class UploadStateStore {
  readonly dir: string;

  constructor(dir: string = defaultUploadStateDir()) {
    this.dir = dir;
  }

  async load(registry: string, repository: string, digest: string): Promise<UploadSession | undefined> {
    try {
      const s = JSON.parse(await readFile(this.#path(registry, repository, digest), "utf8")) as UploadSession;
      const valid =
        s.registry === registry &&
        s.repository === repository &&
        s.digest === digest &&
        typeof s.location === "string" &&
        Number.isSafeInteger(s.offset) &&
        Number.isSafeInteger(s.chunkSize);
      return valid ? s : undefined;
    } catch {
      // Missing or unreadable: there is nothing to resume.
      return undefined;
    }
  }

  async save(s: Omit<UploadSession, "updatedAt">): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const path = this.#path(s.registry, s.repository, s.digest);
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ ...s, updatedAt: new Date().toISOString() }), { mode: 0o600 });
    await rename(tmp, path);
  }

  async delete(registry: string, repository: string, digest: string): Promise<void> {
    await rm(this.#path(registry, repository, digest), { force: true });
  }

  #path(registry: string, repository: string, digest: string): string {
    const key = createHash("sha256").update(`${registry}\n${repository}\n${digest}`).digest("hex");
    return join(this.dir, `${key}.json`);
  }
}
