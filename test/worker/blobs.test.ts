import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { keys } from "../../worker/storage/keys.ts";
import { digestOf, randomBytes } from "./helpers/bytes.ts";
import { bytesOf, expectOciError, registry, uniqueRepo } from "./helpers/registry.ts";
import { blobObjects, isLinked } from "./helpers/storage.ts";

const IMMUTABLE = "public, max-age=31536000, immutable";

async function storedBlob(size = 4096) {
  const repo = uniqueRepo("blobs");
  const bytes = randomBytes(size);
  const digest = await registry.pushBlob(repo, bytes);
  return { repo, bytes, digest };
}

describe("HEAD /v2/<name>/blobs/<digest>", () => {
  it("sends the digest, length, ETag and content type with no body", async () => {
    const { repo, bytes, digest } = await storedBlob();
    const res = await registry.blob(repo, digest, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(res.headers.get("Docker-Content-Digest")).toBe(digest);
    expect(res.headers.get("Content-Length")).toBe(String(bytes.byteLength));
    expect(res.headers.get("ETag")).toBe(`"${digest}"`);
    expect(res.headers.get("Accept-Ranges")).toBe("bytes");
    expect(res.headers.get("Content-Type")).toBe("application/octet-stream");
    expect(await res.text()).toBe("");
  });

  it("is 404 BLOB_UNKNOWN for a blob that was never pushed", async () => {
    const res = await registry.blob(uniqueRepo("blobs"), await digestOf(randomBytes(16)), { method: "HEAD" });
    expect(res.status).toBe(404);
    expect(await res.text()).toBe("");
  });
});

describe("GET /v2/<name>/blobs/<digest>", () => {
  it("returns the bytes as pushed, with digest, length, ETag and an immutable Cache-Control", async () => {
    const { repo, bytes, digest } = await storedBlob();
    const res = await registry.blob(repo, digest);
    expect(res.status).toBe(200);
    expect(res.headers.get("Docker-Content-Digest")).toBe(digest);
    expect(res.headers.get("Content-Length")).toBe(String(bytes.byteLength));
    expect(res.headers.get("ETag")).toBe(`"${digest}"`);
    expect(res.headers.get("Cache-Control")).toBe(IMMUTABLE);
    expect(res.headers.get("Accept-Ranges")).toBe("bytes");
    expect(await bytesOf(res)).toEqual(bytes);
  });

  it("serves identical bytes with their Content-Length and no Content-Encoding to Accept-Encoding: gzip", async () => {
    // Go clients always send this; a re-compressed blob would lose its length and its speed.
    const { repo, bytes, digest } = await storedBlob(64 * 1024);
    const res = await registry.blob(repo, digest, { headers: { "Accept-Encoding": "gzip" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Encoding")).toBeNull();
    expect(res.headers.get("Content-Length")).toBe(String(bytes.byteLength));
    // A Content-Type is what keeps workerd from gzipping the response on the fly.
    expect(res.headers.get("Content-Type")).toBe("application/octet-stream");
    const body = await bytesOf(res);
    expect(await digestOf(body)).toBe(digest);
    expect(body).toEqual(bytes);
  });

  it("caches a blob at its second GET, and a repeat GET returns the same bytes and headers", async () => {
    const { repo, bytes, digest } = await storedBlob();
    const url = `http://registry.test/v2/${repo}/blobs/${digest}`;
    const first = await registry.blob(repo, digest);
    expect(await bytesOf(first)).toEqual(bytes);
    // The first GET only marks the blob as seen: nothing large is written for a one-off pull.
    expect(await waitForCache(url, 10)).toBeUndefined();
    expect(await bytesOf(await registry.blob(repo, digest))).toEqual(bytes);
    const cached = await waitForCache(url);
    expect(cached, "the blob is in the Workers cache").toBeDefined();
    expect(await bytesOf(cached!)).toEqual(bytes);
    const again = await registry.blob(repo, digest, { headers: { "Accept-Encoding": "gzip" } });
    expect(again.status).toBe(200);
    expect(again.headers.get("Docker-Content-Digest")).toBe(digest);
    expect(again.headers.get("Content-Length")).toBe(String(bytes.byteLength));
    expect(again.headers.get("Content-Encoding")).toBeNull();
    expect(again.headers.get("Cache-Control")).toBe(IMMUTABLE);
    expect(await bytesOf(again)).toEqual(bytes);
  });

  it("fills the cache from the filling GET's own read, whole even when that client hangs up", async () => {
    const { repo, bytes, digest } = await storedBlob(5 * 1024 * 1024 + 7);
    const url = `http://registry.test/v2/${repo}/blobs/${digest}`;
    expect(await bytesOf(await registry.blob(repo, digest))).toEqual(bytes);
    // The second GET fills the cache; its client reads one chunk and goes away.
    const cut = await registry.blob(repo, digest);
    const reader = cut.body!.getReader();
    await reader.read();
    await reader.cancel();
    const cached = await waitForCache(url);
    expect(cached, "the blob is in the Workers cache").toBeDefined();
    expect(cached!.headers.get("Content-Length")).toBe(String(bytes.byteLength));
    expect(await bytesOf(cached!)).toEqual(bytes);
  });

  it("answers If-None-Match with the blob's ETag with 304 and no body", async () => {
    const { repo, digest } = await storedBlob();
    const res = await registry.blob(repo, digest, { headers: { "If-None-Match": `"${digest}"` } });
    expect(res.status).toBe(304);
    expect(res.headers.get("ETag")).toBe(`"${digest}"`);
    expect(await res.text()).toBe("");
  });

  it("answers If-None-Match with 304 also once the blob is in the edge cache", async () => {
    const { repo, digest } = await storedBlob();
    const url = `http://registry.test/v2/${repo}/blobs/${digest}`;
    await (await registry.blob(repo, digest)).arrayBuffer();
    await waitForCache(url, 10);
    await (await registry.blob(repo, digest)).arrayBuffer();
    expect(await waitForCache(url)).toBeDefined();
    const res = await registry.blob(repo, digest, { headers: { "If-None-Match": `"${digest}"` } });
    expect(res.status).toBe(304);
    expect(await res.text()).toBe("");
  });

  it("is 404 BLOB_UNKNOWN for an unknown digest", async () => {
    const digest = await digestOf(randomBytes(16));
    const err = await expectOciError(await registry.blob(uniqueRepo("blobs"), digest), 404, "BLOB_UNKNOWN");
    expect(err.detail).toEqual({ digest });
  });

  it("does not serve a blob through a repository it was never pushed to", async () => {
    const { digest } = await storedBlob();
    await expectOciError(await registry.blob(uniqueRepo("blobs"), digest), 404, "BLOB_UNKNOWN");
  });
});

describe("Range requests on blobs", () => {
  it("answers a byte range with 206, Content-Range and exactly those bytes", async () => {
    const { repo, bytes, digest } = await storedBlob(1000);
    const res = await registry.blob(repo, digest, { headers: { Range: "bytes=100-199" } });
    expect(res.status).toBe(206);
    expect(res.headers.get("Content-Range")).toBe("bytes 100-199/1000");
    expect(res.headers.get("Content-Length")).toBe("100");
    expect(res.headers.get("Accept-Ranges")).toBe("bytes");
    expect(res.headers.get("Docker-Content-Digest")).toBe(digest);
    expect(await bytesOf(res)).toEqual(bytes.slice(100, 200));
  });

  it("answers an open-ended range with the rest of the blob", async () => {
    const { repo, bytes, digest } = await storedBlob(1000);
    const res = await registry.blob(repo, digest, { headers: { Range: "bytes=900-" } });
    expect(res.status).toBe(206);
    expect(res.headers.get("Content-Range")).toBe("bytes 900-999/1000");
    expect(await bytesOf(res)).toEqual(bytes.slice(900));
  });

  it("answers a suffix range with the last bytes", async () => {
    const { repo, bytes, digest } = await storedBlob(1000);
    const res = await registry.blob(repo, digest, { headers: { Range: "bytes=-10" } });
    expect(res.status).toBe(206);
    expect(res.headers.get("Content-Range")).toBe("bytes 990-999/1000");
    expect(await bytesOf(res)).toEqual(bytes.slice(990));
  });

  it("clamps a range that runs past the end", async () => {
    const { repo, bytes, digest } = await storedBlob(1000);
    const res = await registry.blob(repo, digest, { headers: { Range: "bytes=950-5000" } });
    expect(res.status).toBe(206);
    expect(res.headers.get("Content-Range")).toBe("bytes 950-999/1000");
    expect(await bytesOf(res)).toEqual(bytes.slice(950));
  });

  it("answers HEAD with a range with 206 headers and no body", async () => {
    const { repo, digest } = await storedBlob(1000);
    const res = await registry.blob(repo, digest, { method: "HEAD", headers: { Range: "bytes=0-9" } });
    expect(res.status).toBe(206);
    expect(res.headers.get("Content-Range")).toBe("bytes 0-9/1000");
    expect(res.headers.get("Content-Length")).toBe("10");
    expect(await res.text()).toBe("");
  });

  it("is 416 with Content-Range bytes */size for a range that starts past the end", async () => {
    const { repo, digest } = await storedBlob(1000);
    const res = await registry.blob(repo, digest, { headers: { Range: "bytes=1000-1100" } });
    expect(res.headers.get("Content-Range")).toBe("bytes */1000");
    await expectOciError(res, 416, "RANGE_INVALID");
  });

  it("serves the whole blob when the Range header is not a single byte range", async () => {
    const { repo, bytes, digest } = await storedBlob(1000);
    const res = await registry.blob(repo, digest, { headers: { Range: "items=0-5" } });
    expect(res.status).toBe(200);
    expect(await bytesOf(res)).toEqual(bytes);
  });
});

describe("DELETE /v2/<name>/blobs/<digest>", () => {
  it("unlinks the blob from the repository: 202, then 404 on HEAD and GET, even after it was cached", async () => {
    const { repo, digest } = await storedBlob();
    const url = `http://registry.test/v2/${repo}/blobs/${digest}`;
    await (await registry.blob(repo, digest)).arrayBuffer();
    await waitForCache(url, 10);
    await (await registry.blob(repo, digest)).arrayBuffer();
    expect(await waitForCache(url)).toBeDefined();
    const res = await registry.blob(repo, digest, { method: "DELETE" });
    expect(res.status).toBe(202);
    expect(await isLinked(repo, digest)).toBe(false);
    expect((await registry.blob(repo, digest, { method: "HEAD" })).status).toBe(404);
    await expectOciError(await registry.blob(repo, digest), 404, "BLOB_UNKNOWN");
  });

  it("leaves the blob readable in other repositories that link it", async () => {
    const { repo, bytes, digest } = await storedBlob();
    const other = uniqueRepo("blobs");
    await registry.pushBlob(other, bytes);
    expect((await registry.blob(repo, digest, { method: "DELETE" })).status).toBe(202);
    const res = await registry.blob(other, digest);
    expect(res.status).toBe(200);
    expect(await bytesOf(res)).toEqual(bytes);
    expect(await blobObjects(digest)).toHaveLength(1);
  });

  it("is 404 BLOB_UNKNOWN for a blob the repository does not have", async () => {
    const { repo, digest } = await storedBlob();
    expect((await registry.blob(repo, digest, { method: "DELETE" })).status).toBe(202);
    await expectOciError(await registry.blob(repo, digest, { method: "DELETE" }), 404, "BLOB_UNKNOWN");
  });
});

describe("blob storage", () => {
  it("stores a blob's bytes once, recorded under blobs/, with a link per repository naming the same copy", async () => {
    const { repo, bytes, digest } = await storedBlob();
    const other = uniqueRepo("blobs");
    await registry.pushBlob(other, bytes);
    expect(await blobObjects(digest)).toHaveLength(1);
    expect(await isLinked(repo, digest)).toBe(true);
    expect(await isLinked(other, digest)).toBe(true);
    const loc = (await env.BLOBS.head(keys.blob(digest)))!.customMetadata!.loc!;
    for (const r of [repo, other])
      expect((await env.BLOBS.head(keys.blobLink(r, digest)))!.customMetadata!.loc).toBe(loc);
    const obj = await env.BLOBS.get(loc);
    expect(new Uint8Array(await obj!.arrayBuffer())).toEqual(bytes);
  });
});

/** The cached response for `url`; the cache is written in waitUntil, after the response, so poll a while. */
async function waitForCache(url: string, tries = 50): Promise<Response | undefined> {
  for (let i = 0; i < tries; i++) {
    const hit = await caches.default.match(url);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}
