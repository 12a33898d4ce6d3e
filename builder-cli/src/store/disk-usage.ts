/**
 * How much disk the store and the allotment cache take. Blobs are counted by file, not by name:
 * an allotment in an image's layout is a hard link of the cache's copy, so it takes its bytes
 * once however many images and the cache hold it.
 */
import { lstat } from "node:fs/promises";
import path from "node:path";
import { blobFiles, layoutBlobFiles, type StoreLayout } from "./inventory.ts";

export interface DiskUsage {
  store: { dir: string; repositories: number; images: number; blobs: number; bytes: number };
  cache: { dir: string; blobs: number; bytes: number; bytesOnlyInCache: number };
  /** Both together, each file once. */
  bytes: number;
}

export async function diskUsage(storeRoot: string, cacheRoot: string, layouts: StoreLayout[]): Promise<DiskUsage> {
  const storeFiles: string[] = [];
  for (const l of layouts) storeFiles.push(...(await layoutBlobFiles(l.layout)).blobs.map((d) => l.layout.blobPath(d)));
  const cacheDir = path.join(cacheRoot, "blobs", "sha256");
  const cacheFiles = (await blobFiles(cacheDir)).blobs.map((d) => path.join(cacheDir, d.slice(7)));
  const inStore = await inodes(storeFiles);
  const inCache = await inodes(cacheFiles);
  const all = new Map([...inStore, ...inCache]);
  const sum = (m: Map<string, number>): number => [...m.values()].reduce((n, x) => n + x, 0);
  return {
    store: {
      dir: storeRoot,
      repositories: layouts.length,
      images: layouts.reduce((n, l) => n + l.images.length, 0),
      blobs: storeFiles.length,
      bytes: sum(inStore),
    },
    cache: {
      dir: cacheRoot,
      blobs: cacheFiles.length,
      bytes: sum(inCache),
      bytesOnlyInCache: sum(new Map([...inCache].filter(([k]) => !inStore.has(k)))),
    },
    bytes: sum(all),
  };
}

/** dev:ino -> size, each file once. */
async function inodes(files: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const f of files) {
    const s = await lstat(f).catch(() => undefined);
    if (s) out.set(`${s.dev}:${s.ino}`, s.size);
  }
  return out;
}
