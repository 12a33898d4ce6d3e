/** GET, HEAD and DELETE of blobs. Blobs are served byte for byte, with their length, and cached at the edge. */
import { Hono } from "hono";
import { parseDigest } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import type { AppEnv } from "../env.ts";
import { parseRange, repoName } from "../http.ts";
import { blobCacheKey, blobHeaders } from "../storage/edge-cache.ts";
import { blobToServe, forgetBlob } from "../storage/edge-reads.ts";

export const blobs = new Hono<AppEnv>();

blobs.on(["GET", "HEAD"], "/:name{.+}/blobs/:digest", async (c) => {
  const name = repoName(c);
  const digest = parseDigest(c.req.param("digest"));
  const store = c.var.store;
  const rangeHeader = c.req.header("range");
  const ifNoneMatch = c.req.header("if-none-match");
  // The link is checked on every request, cached or not: a blob deleted from this repository is not
  // served again from an edge cache that still holds its bytes. At this location the delete purges
  // what it remembered of the link; elsewhere that lives at most EDGE_TTL_SECONDS.
  // Partition configs are derived objects, fetched by digest like any blob.
  // A HEAD usually comes from a client about to skip an upload: vouch keeps the link from being
  // collected under it (worker/storage/blobs.ts).
  // A GET is answered from this location's memory of the link when it has one (edge-reads.ts).
  const info =
    c.req.method === "HEAD"
      ? ((await store.blobs.vouch(name, digest, store.config.gc.graceMs / 2)) ??
        (await store.derived.statBlob(name, digest)))
      : await blobToServe(store, name, digest);
  if (!info) {
    // A mirror fetches what it does not hold yet (worker/upstream/mirror.ts).
    const mirror = store.mirror(name);
    if (mirror) return mirror.serveBlob(c.req.method === "HEAD" ? "HEAD" : "GET", digest, rangeHeader);
    throw new RegistryError("BLOB_UNKNOWN", undefined, { digest });
  }
  // The cached response is a full 200: a ranged or conditional GET is answered from R2 instead,
  // and a blob too large to be cached is not looked up.
  const cacheable = c.req.method === "GET" && !rangeHeader && !ifNoneMatch && info.size <= store.edgeCache.maxBytes;
  if (cacheable) {
    const hit = await store.edgeCache.match(blobCacheKey(c.req.url, name, digest));
    if (hit) return hit;
  }
  const headers = blobHeaders(info);
  if (ifNoneMatch === `"${digest}"`) return new Response(null, { status: 304, headers });
  const range = parseRange(rangeHeader, info.size);
  if (range) {
    headers.set("Content-Range", `bytes ${range.offset}-${range.offset + range.length - 1}/${info.size}`);
    headers.set("Content-Length", String(range.length));
    const body = c.req.method === "HEAD" ? null : await store.blobs.open(info, range);
    return new Response(body, { status: 206, headers });
  }
  headers.set("Content-Length", String(info.size));
  if (c.req.method === "HEAD") return new Response(null, { status: 200, headers });
  let body = await store.blobs.open(info);
  if (cacheable) {
    const key = blobCacheKey(c.req.url, name, digest);
    // Filled from this response's own R2 read, at the client's pace (edge-cache.ts).
    if (await store.edgeCache.admit(key, c.var.later)) body = store.edgeCache.fill(key, info, body, c.var.later);
  }
  return new Response(body, { status: 200, headers });
});

blobs.delete("/:name{.+}/blobs/:digest", async (c) => {
  const name = repoName(c);
  const digest = parseDigest(c.req.param("digest"));
  if (!(await c.var.store.blobs.unlink(name, digest))) throw new RegistryError("BLOB_UNKNOWN", undefined, { digest });
  // Only this location's cache can be purged from here; other edges expire on their own.
  await Promise.all([
    c.var.store.edgeCache.delete(blobCacheKey(c.req.url, name, digest)),
    forgetBlob(c.var.store, name, digest),
  ]);
  return c.body(null, 202);
});
