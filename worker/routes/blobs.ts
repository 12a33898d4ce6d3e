/** GET, HEAD and DELETE of blobs. Blobs are served byte for byte, with their length, and cached at the edge. */
import { Hono } from "hono";
import type { Context } from "hono";
import { parseDigest } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import type { AppEnv } from "../env.ts";
import { parseRange, repoName } from "../http.ts";
import type { BlobInfo } from "../storage/blobs.ts";

export const blobs = new Hono<AppEnv>();

/** Content-addressed bytes never change: any cache may keep them for a year. */
const IMMUTABLE = "public, max-age=31536000, immutable";
const DEFAULT_CACHE_MAX = 512 * 1024 * 1024;

function blobHeaders(info: BlobInfo): Headers {
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

blobs.on(["GET", "HEAD"], "/:name{.+}/blobs/:digest", async (c) => {
  const name = repoName(c);
  const digest = parseDigest(c.req.param("digest"));
  const store = c.var.store;
  const rangeHeader = c.req.header("range");
  const cacheMax = Number(c.env.CACHE_MAX_BLOB_BYTES ?? DEFAULT_CACHE_MAX);
  const cacheable = c.req.method === "GET" && !rangeHeader;
  if (cacheable) {
    const hit = await caches.default.match(cacheKey(c));
    if (hit) return hit;
  }
  // Partition configs are derived objects, fetched by digest like any blob.
  const info = (await store.blobs.stat(name, digest)) ?? (await store.derived.statBlob(name, digest));
  if (!info) throw new RegistryError("BLOB_UNKNOWN", undefined, { digest });
  const headers = blobHeaders(info);
  if (c.req.header("if-none-match") === `"${digest}"`) return new Response(null, { status: 304, headers });
  const range = parseRange(rangeHeader, info.size);
  if (range) {
    headers.set("Content-Range", `bytes ${range.offset}-${range.offset + range.length - 1}/${info.size}`);
    headers.set("Content-Length", String(range.length));
    const body = c.req.method === "HEAD" ? null : await store.blobs.open(info, range);
    return new Response(body, { status: 206, headers });
  }
  headers.set("Content-Length", String(info.size));
  if (c.req.method === "HEAD") return new Response(null, { status: 200, headers });
  const body = await store.blobs.open(info);
  if (cacheable && info.size <= cacheMax) {
    // Serve the client and fill the edge cache from one R2 read.
    const [toClient, toCache] = body.tee();
    c.executionCtx.waitUntil(
      caches.default.put(cacheKey(c), new Response(toCache, { headers })).catch(() => undefined),
    );
    return new Response(toClient, { status: 200, headers });
  }
  return new Response(body, { status: 200, headers });
});

blobs.delete("/:name{.+}/blobs/:digest", async (c) => {
  const name = repoName(c);
  const digest = parseDigest(c.req.param("digest"));
  if (!(await c.var.store.blobs.unlink(name, digest))) throw new RegistryError("BLOB_UNKNOWN", undefined, { digest });
  // Only this location's cache can be purged from here; other edges expire on their own.
  await caches.default.delete(cacheKey(c));
  return c.body(null, 202);
});

/** The cache key ignores auth headers; auth runs before any route, so only allowed callers reach it. */
function cacheKey(c: Context<AppEnv>): Request {
  const u = new URL(c.req.url);
  u.search = "";
  return new Request(u.toString(), { method: "GET" });
}
