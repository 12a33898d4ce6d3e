/**
 * The allotment cache, content-addressed:
 *
 *   <cache>/blobs/sha256/<hex>        allotment blobs, by digest
 *   <cache>/allotments/<key>.json     key -> { digest, diffid, size, mediaType }
 *   <cache>/stat.json                 source path -> (dev, ino, size, mtime, ctime) and sha256
 *
 * The key is a hash of what decides an allotment's bytes: each entry's name, type and mode, each
 * file's content hash, each link's target, and the compression settings. Content hashes come
 * from the stat cache while a file's stat is unchanged (the way git's index works), so an
 * unchanged allotment is recognised without reading its files. A hit counts only while its blob
 * is still there with the right size.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import type { Digest } from "../../../core/oci/digest.ts";
import type { FileStamp, TarEntry } from "../build/entries.ts";
import { tempPathFor, writeFileAtomic } from "./atomic.ts";

export interface CachedAllotment {
  digest: Digest;
  diffid: Digest;
  size: number;
  mediaType: string;
}

interface StatRecord extends FileStamp {
  sha256: string;
}

/** Bump when the tar layout or key recipe changes, so old entries are never mistaken for new. */
const KEY_VERSION = 1;

export class BuildCache {
  readonly root: string;
  private stats = new Map<string, StatRecord>();

  constructor(root: string) {
    this.root = root;
  }

  blobPath(digest: Digest): string {
    return path.join(this.root, "blobs", "sha256", digest.slice(7));
  }

  /** A temporary file in the blob directory, renamed into place once its digest is known. */
  async tempBlobPath(): Promise<string> {
    const dir = path.join(this.root, "blobs", "sha256");
    await mkdir(dir, { recursive: true });
    return tempPathFor(path.join(dir, "building"));
  }

  async loadStats(): Promise<void> {
    try {
      const records = JSON.parse(await readFile(path.join(this.root, "stat.json"), "utf8")) as Record<
        string,
        StatRecord
      >;
      this.stats = new Map(Object.entries(records));
    } catch {
      // Missing or damaged: it is only a cache, everything gets hashed again.
      this.stats = new Map();
    }
  }

  async saveStats(): Promise<void> {
    await writeFileAtomic(path.join(this.root, "stat.json"), JSON.stringify(Object.fromEntries(this.stats)));
  }

  /** The content hash of a file whose stat has not changed since it was last hashed. */
  knownHash(e: Extract<TarEntry, { type: "file" }>): string | undefined {
    const r = this.stats.get(e.source);
    const s = e.stamp;
    const same =
      r &&
      r.dev === s.dev &&
      r.ino === s.ino &&
      r.size === s.size &&
      r.mtimeNs === s.mtimeNs &&
      r.ctimeNs === s.ctimeNs;
    return same ? r.sha256 : undefined;
  }

  rememberHash(e: Extract<TarEntry, { type: "file" }>, sha256: string): void {
    this.stats.set(e.source, { ...e.stamp, sha256 });
  }

  /** The cache key, or undefined when some file's content hash is not known without reading it. */
  keyFor(
    entries: readonly TarEntry[],
    compression: { setting: string; level: number },
    hashOf = (e: Extract<TarEntry, { type: "file" }>) => this.knownHash(e),
  ): string | undefined {
    const parts: unknown[] = [];
    for (const e of entries) {
      if (e.type === "file") {
        const h = hashOf(e);
        if (!h) return undefined;
        parts.push([e.name, "f", e.mode, h]);
      } else if (e.type === "symlink") {
        parts.push([e.name, "l", e.mode, e.linkname]);
      } else {
        parts.push([e.name, "d", e.mode]);
      }
    }
    const recipe = JSON.stringify({
      v: KEY_VERSION,
      compression: compression.setting,
      level: compression.level,
      entries: parts,
    });
    return createHash("sha256").update(recipe).digest("hex");
  }

  /** A cached result whose blob is still present; a dangling entry is a miss. */
  async get(key: string): Promise<CachedAllotment | undefined> {
    let entry: CachedAllotment;
    try {
      entry = JSON.parse(await readFile(this.entryPath(key), "utf8")) as CachedAllotment;
    } catch {
      return undefined;
    }
    try {
      const s = await stat(this.blobPath(entry.digest));
      return s.size === entry.size ? entry : undefined;
    } catch {
      return undefined;
    }
  }

  async put(key: string, entry: CachedAllotment): Promise<void> {
    await writeFileAtomic(this.entryPath(key), JSON.stringify(entry));
  }

  private entryPath(key: string): string {
    return path.join(this.root, "allotments", `${key}.json`);
  }
}
