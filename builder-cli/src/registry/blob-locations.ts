/**
 * Which repositories of one registry are known to hold a blob, as docker remembers them: pushing a
 * model into a second repository then mounts every blob (`POST ?mount=&from=`) instead of sending
 * it again. It is a hint, never trusted: a mount the registry refuses only costs the upload that
 * would have happened anyway, and drops the stale entry.
 *
 * One small JSON file per registry, `{ digest: { repos: [newest first], seen: epoch ms } }`, kept
 * next to the build cache. Writes merge with what is on disk (another push may have run
 * meanwhile) and replace the file atomically; the file is bounded in digests and repositories.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../store/atomic.ts";

interface Entry {
  repos: string[];
  seen: number;
}
type Index = Record<string, Entry>;

/** Repositories remembered per blob: enough to find one that still has it. */
const REPOS_PER_BLOB = 5;
/** Digests remembered per registry; the least recently seen go first. */
const MAX_DIGESTS = 20_000;

export class BlobLocations {
  readonly file: string;
  #index: Index;
  /** Changes since load, replayed over the file's newest contents on save. */
  readonly #changes: { digest: string; repo: string; present: boolean; at: number }[] = [];

  private constructor(file: string, index: Index) {
    this.file = file;
    this.#index = index;
  }

  /** The index of `registry` (host[:port]) under `dir`; an absent or unreadable file is an empty index. */
  static async open(dir: string, registry: string): Promise<BlobLocations> {
    const file = path.join(dir, `${registry.toLowerCase().replace(/[^a-z0-9.-]/g, "_")}.json`);
    return new BlobLocations(file, await readIndex(file));
  }

  /** Repositories that held `digest` when last seen, newest first. */
  repositoriesOf(digest: string): string[] {
    return [...(this.#index[digest]?.repos ?? [])];
  }

  /** `repo` holds `digest` (it was pushed, mounted or found there). */
  record(digest: string, repo: string): void {
    this.#apply(this.#index, { digest, repo, present: true, at: Date.now() });
  }

  /** `repo` turned out not to hold `digest` (a mount from it was refused). */
  forget(digest: string, repo: string): void {
    this.#apply(this.#index, { digest, repo, present: false, at: Date.now() });
  }

  async save(): Promise<void> {
    if (this.#changes.length === 0) return;
    const merged = await readIndex(this.file);
    for (const c of this.#changes) applyChange(merged, c);
    const digests = Object.keys(merged);
    if (digests.length > MAX_DIGESTS) {
      digests.sort((a, b) => merged[b]!.seen - merged[a]!.seen);
      for (const d of digests.slice(MAX_DIGESTS)) delete merged[d];
    }
    await writeFileAtomic(this.file, JSON.stringify(merged));
    this.#index = merged;
    this.#changes.length = 0;
  }

  #apply(index: Index, c: { digest: string; repo: string; present: boolean; at: number }): void {
    applyChange(index, c);
    this.#changes.push(c);
  }
}

function applyChange(index: Index, c: { digest: string; repo: string; present: boolean; at: number }): void {
  const others = (index[c.digest]?.repos ?? []).filter((r) => r !== c.repo);
  const repos = c.present ? [c.repo, ...others].slice(0, REPOS_PER_BLOB) : others;
  if (repos.length === 0) delete index[c.digest];
  else index[c.digest] = { repos, seen: Math.max(c.at, index[c.digest]?.seen ?? 0) };
}

async function readIndex(file: string): Promise<Index> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return {};
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return {};
    const index: Index = {};
    for (const [digest, e] of Object.entries(parsed as Record<string, unknown>)) {
      const entry = e as Partial<Entry> | null;
      if (!entry || !Array.isArray(entry.repos) || typeof entry.seen !== "number") continue;
      const repos = entry.repos.filter((r): r is string => typeof r === "string");
      if (repos.length) index[digest] = { repos, seen: entry.seen };
    }
    return index;
  } catch {
    // A damaged hint file costs only uploads that mounts would have saved: start afresh.
    return {};
  }
}
