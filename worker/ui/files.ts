/**
 * What is in a layer: its file list, when that is cheap. A plain tar is listed from its headers
 * with ranged R2 reads; a gzip'd tar is inflated as a stream (only up to GZIP_MAX_BYTES, since
 * every byte must pass); a zstd tar is not listed (workerd has no zstd decoder). A listing
 * depends only on the blob's bytes, so it is cached by digest in the Workers Cache API.
 */
import type { BlobInfo } from "../storage/blobs.ts";
import type { Store } from "../storage/store.ts";
import { listTar, rangedSource, streamSource, TarError, TarLimit, type TarEntry } from "./tar.ts";

export type FileListing = { listed: true; entries: TarEntry[]; truncated: boolean } | { listed: false; reason: string };

/** gzip layers up to this size are inflated to list them. */
export const GZIP_MAX_BYTES = 64 * 1024 * 1024;
const ENTRIES_MAX = 2000;
const RANGE_WINDOW = 64 * 1024;
const RANGE_READS_MAX = 200;
/** Listings are cached under this made-up origin, which no request can reach. */
const CACHE_ORIGIN = "https://file-lists.2dfs-ui.invalid/v1/";
/** Recent listings also stay in the isolate: the Cache API is per location, and absent on workers.dev. */
const MEMO_MAX = 64;
const memo = new Map<string, FileListing>();

export async function listFiles(store: Store, info: BlobInfo): Promise<FileListing> {
  const remembered = memo.get(info.digest);
  if (remembered) return remembered;
  const listing = await cachedListing(store, info);
  if (memo.size >= MEMO_MAX) memo.delete(memo.keys().next().value ?? "");
  memo.set(info.digest, listing);
  return listing;
}

async function cachedListing(store: Store, info: BlobInfo): Promise<FileListing> {
  const cache = await openCache();
  const key = new Request(CACHE_ORIGIN + info.digest);
  const hit = await cache?.match(key);
  if (hit) return (await hit.json()) as FileListing;
  const listing = await compute(store, info);
  const response = new Response(JSON.stringify(listing), {
    headers: { "Content-Type": "application/json", "Cache-Control": "public, max-age=31536000, immutable" },
  });
  await cache?.put(key, response).catch(() => undefined);
  return listing;
}

async function compute(store: Store, info: BlobInfo): Promise<FileListing> {
  if (info.compression === "zstd") return { listed: false, reason: "not listed: zstd layers are not read here" };
  if (info.compression === "gzip" && info.size > GZIP_MAX_BYTES) {
    return {
      listed: false,
      reason: `not listed: gzip layers over ${GZIP_MAX_BYTES / 1024 / 1024} MiB are not read here`,
    };
  }
  try {
    if (info.compression === "none") {
      const source = rangedSource(
        async (offset, length) =>
          new Uint8Array(await new Response(await store.blobs.open(info, { offset, length })).arrayBuffer()),
        info.size,
        RANGE_WINDOW,
        RANGE_READS_MAX,
      );
      return { listed: true, ...(await listTar(source, ENTRIES_MAX)) };
    }
    const source = streamSource((await store.blobs.open(info)).pipeThrough(new DecompressionStream("gzip")));
    try {
      return { listed: true, ...(await listTar(source, ENTRIES_MAX)) };
    } finally {
      await source.close();
    }
  } catch (e) {
    if (e instanceof TarLimit) return { listed: false, reason: "not listed: too many files to read cheaply" };
    if (e instanceof TarError) return { listed: false, reason: `not listed: ${e.message}` };
    if (e instanceof TypeError) return { listed: false, reason: "not listed: the layer is not valid gzip" };
    throw e;
  }
}

async function openCache(): Promise<Cache | undefined> {
  // The Cache API is absent in some runtimes (and a no-op on workers.dev); listing still works.
  try {
    return typeof caches === "undefined" ? undefined : await caches.open("2dfs-ui-files");
  } catch {
    return undefined;
  }
}
