/**
 * `prune`: removes what no stored image references. That is the blobs of every layout and of the
 * allotment cache that no tagged image names (allotments found through the fields), the cache
 * entries that lead to such blobs, the leftovers of interrupted writes, and the layouts left
 * without an image. A layout's blobs are judged by its own images (each layout is a complete OCI
 * layout that skopeo or containerd may read alone); the cache's by every image in the store. A
 * layout with an image that cannot be read keeps all its blobs, since what that image needs
 * cannot be known.
 *
 * The bytes freed are counted as the disk gets them back: a blob in a layout is a hard link of
 * the cache's copy (store/atomic.ts linkOrCopy), so a file counts once, and only when every link
 * to it goes. It runs under the exclusive store lock (store/lock.ts), so no build is writing.
 */
import { lstat, readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import type { Digest } from "../../../core/oci/digest.ts";
import { removeEmptyDirs } from "./atomic.ts";
import { blobFiles, layoutBlobFiles, readStore, type StoreLayout } from "./inventory.ts";

export interface PrunePlan {
  /** Blob files and leftovers to delete. */
  blobs: string[];
  /** Cache entries whose blob goes. */
  cacheEntries: string[];
  /** Layouts with no image left: their own files go, and their directories once empty. */
  layouts: string[];
  /** What the disk gets back from the blobs and leftovers. */
  bytes: number;
}

export async function planPrune(storeRoot: string, cacheRoot: string, store?: StoreLayout[]): Promise<PrunePlan> {
  const layouts = store ?? (await readStore(storeRoot));
  // A layout is an OCI layout of its own: it keeps the blobs its images name, whatever other
  // layouts hold. The cache keeps what any image names.
  const referenced = new Set<Digest>();
  const blobs: string[] = [];
  const empty: string[] = [];
  for (const l of layouts) {
    const files = await layoutBlobFiles(l.layout);
    blobs.push(...files.leftovers);
    const own = new Set<Digest>();
    if (l.images.some((i) => i.damaged)) for (const d of files.blobs) own.add(d);
    for (const image of l.images) for (const d of image.blobs.keys()) own.add(d);
    for (const d of own) referenced.add(d);
    for (const d of files.blobs) if (!own.has(d)) blobs.push(l.layout.blobPath(d));
    if (l.images.length === 0) empty.push(l.layout.dir);
  }
  const cacheDir = path.join(cacheRoot, "blobs", "sha256");
  const cache = await blobFiles(cacheDir);
  blobs.push(...cache.leftovers);
  for (const d of cache.blobs) if (!referenced.has(d)) blobs.push(path.join(cacheDir, d.slice(7)));
  const cacheEntries = await unreferencedEntries(path.join(cacheRoot, "allotments"), referenced);
  return { blobs, cacheEntries, layouts: empty, bytes: await bytesFreed(blobs) };
}

export async function applyPrune(plan: PrunePlan, storeRoot: string): Promise<void> {
  for (const f of [...plan.blobs, ...plan.cacheEntries]) await rm(f, { force: true });
  for (const dir of plan.layouts) {
    for (const own of ["blobs", "index.json", "oci-layout"])
      await rm(path.join(dir, own), { recursive: true, force: true });
    await removeEmptyDirs(dir, storeRoot);
  }
}

/** Cache entries (`<key>.json` -> {digest, ...}) whose blob no image references. */
async function unreferencedEntries(dir: string, referenced: ReadonlySet<Digest>): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const file = path.join(dir, name);
    let digest: unknown;
    try {
      digest = (JSON.parse(await readFile(file, "utf8")) as { digest?: unknown }).digest;
    } catch {
      // Half-written or damaged: the cache treats it as a miss, so nothing is lost.
      out.push(file);
      continue;
    }
    if (!referenced.has(digest as Digest)) out.push(file);
  }
  return out;
}

/** Bytes of the files whose every hard link is in `files`. */
async function bytesFreed(files: readonly string[]): Promise<number> {
  const inodes = new Map<string, { links: number; nlink: number; size: number }>();
  for (const f of files) {
    const s = await lstat(f).catch(() => undefined);
    if (!s) continue;
    const key = `${s.dev}:${s.ino}`;
    const seen = inodes.get(key) ?? { links: 0, nlink: s.nlink, size: s.size };
    seen.links++;
    inodes.set(key, seen);
  }
  let bytes = 0;
  for (const i of inodes.values()) if (i.links >= i.nlink) bytes += i.size;
  return bytes;
}
