/**
 * The Workers Cache API in front of blob GETs, so that CDN edges answer repeated pulls. Blobs are
 * content-addressed and immutable, so a cached copy is never stale; the key is the blob's URL in
 * its repository. (On Cloudflare the Cache API works on custom domains, not on workers.dev.)
 */
import type { BlobInfo } from "./blobs.ts";
import { BLOCK_BYTES, BlockSource } from "./blocks.ts";
import { fromStorage } from "./storage-error.ts";

/** Content-addressed bytes never change: any cache may keep them for a year. */
export const IMMUTABLE = "public, max-age=31536000, immutable";

export function blobHeaders(info: BlobInfo): Headers {
  return new Headers({
    "Docker-Content-Digest": info.digest,
    ETag: `"${info.digest}"`,
    "Accept-Ranges": "bytes",
    // A Content-Type stops workerd from gzipping the body again for Go clients, which always send
    // Accept-Encoding: gzip: the bytes and their Content-Length reach the client untouched.
    "Content-Type": "application/octet-stream",
    "Cache-Control": IMMUTABLE,
  });
}

/** The URL a blob is cached under: `<origin>/v2/<name>/blobs/<digest>`, whatever the query. */
export function blobCacheKey(requestUrl: string, name: string, digest: string): Request {
  return new Request(new URL(`/v2/${name}/blobs/${digest}`, requestUrl).toString(), { method: "GET" });
}

/** The marker's key: a URL no route serves, beside the blob's. */
function markerOf(key: Request): Request {
  return new Request(`${key.url}/.seen`, { method: "GET" });
}

export class EdgeCache {
  readonly maxBytes: number;
  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  match(key: Request): Promise<Response | undefined> {
    return caches.default.match(key);
  }

  /**
   * The blob's body for the client, copied into the cache on the way: one R2 read serves both, so
   * the request that fills the cache reads no more from R2 than any other. The copy goes at the
   * slower side's pace (a block is read once both took the previous one), so nothing piles up in
   * the isolate. A client that goes away does not stop the copy: a cache body cut short was kept
   * as a truncated entry by the local runtime, served as a 200 to every later pull, so the copy
   * is finished from R2 instead. A cache write that fails stops only the copy.
   */
  fill(
    key: Request,
    info: BlobInfo,
    body: ReadableStream<Uint8Array>,
    waitUntil: (work: Promise<unknown>) => void,
  ): ReadableStream<Uint8Array> {
    const headers = blobHeaders(info);
    headers.set("Content-Length", String(info.size));
    const client = new FixedLengthStream(info.size);
    const copy = new FixedLengthStream(info.size);
    const put = caches.default.put(key, new Response(copy.readable, { headers }));
    const cacheWriter = copy.writable.getWriter();
    const clientWriter = client.writable.getWriter();
    let caching = true;
    let serving = true;
    /** Whether the whole body went through. */
    const pump = async (): Promise<boolean> => {
      const source = new BlockSource(body, fromStorage);
      let left = info.size;
      try {
        while (left > 0 && (caching || serving)) {
          const block = await source.read(Math.min(BLOCK_BYTES, left));
          if (!block) throw new Error("blob body ended early");
          left -= block.byteLength;
          await Promise.all([
            // Its own copy for the cache: a chunk written to a stream may be handed on as it is.
            caching ? cacheWriter.write(block.slice()).catch(() => (caching = false)) : undefined,
            serving ? clientWriter.write(block).catch(() => (serving = false)) : undefined,
          ]);
        }
        if (left > 0) await source.cancel();
        if (serving) await clientWriter.close().catch(() => undefined);
        if (caching) await cacheWriter.close().catch(() => undefined);
        return true;
      } catch (e) {
        // R2 failed mid-read: both sides end in error.
        await Promise.all([cacheWriter.abort(e).catch(() => undefined), clientWriter.abort(e).catch(() => undefined)]);
        await source.cancel(e);
        return false;
      }
    };
    const filled = async (): Promise<void> => {
      const whole = await pump();
      await put.catch(() => undefined);
      // An aborted copy may still have been stored, cut short (the local runtime keeps what had
      // arrived), and would be served as a 200 to every later pull: it never stays.
      if (!whole) await caches.default.delete(key).catch(() => undefined);
    };
    waitUntil(filled());
    return client.readable as ReadableStream<Uint8Array>;
  }

  /**
   * Whether a blob that missed the cache should be stored now. Blobs are cached on their second
   * request at a location, not the first: a blob pulled once (a push's check, a one-off copy)
   * never pays for a multi-GB cache write, while a fleet pulling the same partition fills the
   * cache at its second device. The first request leaves a small marker in the cache.
   */
  async admit(key: Request, waitUntil: (work: Promise<unknown>) => void): Promise<boolean> {
    const marker = markerOf(key);
    if (await caches.default.match(marker)) return true;
    // Left after the response: the first request of a blob waits on one cache lookup, not two.
    waitUntil(
      caches.default
        .put(marker, new Response("seen", { headers: { "Cache-Control": "max-age=86400" } }))
        .catch(() => undefined),
    );
    return false;
  }

  async delete(key: Request): Promise<void> {
    await Promise.all([caches.default.delete(key), caches.default.delete(markerOf(key))]);
  }
}
