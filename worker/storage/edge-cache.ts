/**
 * The Workers Cache API in front of blob GETs, so that CDN edges answer repeated pulls. Blobs are
 * content-addressed and immutable, so a cached copy is never stale; the key is the blob's URL in
 * its repository. (On Cloudflare the Cache API works on custom domains, not on workers.dev.)
 */
import type { BlobInfo } from "./blobs.ts";

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

  /** Stores a full 200 response for the blob; failures only cost a later cache miss. */
  async put(key: Request, info: BlobInfo, body: ReadableStream<Uint8Array>): Promise<void> {
    const headers = blobHeaders(info);
    headers.set("Content-Length", String(info.size));
    try {
      await caches.default.put(key, new Response(body, { headers }));
    } catch {
      await body.cancel().catch(() => undefined);
    }
  }

  /**
   * Whether a blob that missed the cache should be stored now. Blobs are cached on their second
   * request at a location, not the first: a blob pulled once (a push's check, a one-off copy)
   * never pays for a multi-GB cache write, while a fleet pulling the same partition fills the
   * cache at its second device. The first request leaves a small marker in the cache.
   */
  async admit(key: Request): Promise<boolean> {
    const marker = markerOf(key);
    if (await caches.default.match(marker)) return true;
    await caches.default.put(marker, new Response("seen", { headers: { "Cache-Control": "max-age=86400" } }));
    return false;
  }

  async delete(key: Request): Promise<void> {
    await Promise.all([caches.default.delete(key), caches.default.delete(markerOf(key))]);
  }
}
