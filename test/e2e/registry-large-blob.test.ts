/**
 * Blobs far larger than one request body: a 306 MiB random blob goes up in 64 MiB PATCH chunks
 * (Content-Range), is closed by PUT ?digest= with no body, and comes back streamed with the same
 * sha256 and its exact length, even when the client accepts gzip. A second, streamed upload uses
 * PATCH without Content-Range and a closing PUT sent with Transfer-Encoding: chunked.
 */
import { createHash, randomFillSync } from "node:crypto";
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Digest } from "../../core/oci/digest.ts";
import { openUpload, withQuery } from "../helpers/oci.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";

const MiB = 1024 * 1024;
const CHUNK = 64 * MiB;
const SIZES = [CHUNK, CHUNK, CHUNK, CHUNK, 50 * MiB];
const TOTAL = SIZES.reduce((a, b) => a + b, 0);

/** GETs with node:http, which never decodes a Content-Encoding, hashing the body as it streams. */
function streamedGet(
  url: string,
  headers: Record<string, string>,
): Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  bytes: number;
  digest: Digest;
  tail: Buffer;
}> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      const hash = createHash("sha256");
      let bytes = 0;
      let tail = Buffer.alloc(0);
      res.on("data", (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.byteLength;
        tail = Buffer.concat([tail, chunk]).subarray(-4096);
      });
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          bytes,
          digest: `sha256:${hash.digest("hex")}`,
          tail,
        }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("large blobs in chunks", () => {
  let registry: Registry;

  beforeAll(async () => {
    registry = await startRegistry();
  });

  afterAll(async () => {
    await registry?.stop();
  });

  it(`pushes ${TOTAL} random bytes in ${SIZES.length} Content-Range PATCHes and pulls them back intact`, async () => {
    expect(TOTAL).toBeGreaterThanOrEqual(300_000_000);
    let location = await openUpload(registry.url, "e2e/large");
    const hash = createHash("sha256");
    let offset = 0;
    let lastBytes = Buffer.alloc(0);
    for (const size of SIZES) {
      const chunk = randomFillSync(Buffer.allocUnsafe(size));
      hash.update(chunk);
      const res = await fetch(location, {
        method: "PATCH",
        headers: {
          "Content-Type": "application/octet-stream",
          "Content-Range": `${offset}-${offset + size - 1}`,
          "Content-Length": String(size),
        },
        body: chunk,
      });
      expect(res.status, await res.text()).toBe(202);
      offset += size;
      expect(res.headers.get("range")).toBe(`0-${offset - 1}`);
      location = new URL(res.headers.get("location")!, registry.url).toString();
      lastBytes = chunk.subarray(-100);
    }
    const digest: Digest = `sha256:${hash.digest("hex")}`;

    const status = await fetch(location);
    expect(status.status).toBe(204);
    expect(status.headers.get("range")).toBe(`0-${TOTAL - 1}`);

    const put = await fetch(withQuery(location, { digest }), { method: "PUT" });
    expect(put.status, await put.text()).toBe(201);
    expect(put.headers.get("docker-content-digest")).toBe(digest);

    const head = await fetch(`${registry.url}/v2/e2e/large/blobs/${digest}`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(TOTAL));
    expect(head.headers.get("docker-content-digest")).toBe(digest);

    const got = await streamedGet(`${registry.url}/v2/e2e/large/blobs/${digest}`, { "Accept-Encoding": "gzip" });
    expect(got.status).toBe(200);
    expect(got.headers["content-encoding"]).toBeUndefined();
    expect(got.headers["content-length"]).toBe(String(TOTAL));
    expect(got.bytes).toBe(TOTAL);
    expect(got.digest).toBe(digest);

    const range = await streamedGet(`${registry.url}/v2/e2e/large/blobs/${digest}`, {
      "Accept-Encoding": "gzip",
      Range: `bytes=${TOTAL - 100}-`,
    });
    expect(range.status).toBe(206);
    expect(range.headers["content-range"]).toBe(`bytes ${TOTAL - 100}-${TOTAL - 1}/${TOTAL}`);
    expect(range.tail.equals(lastBytes)).toBe(true);
  });

  it("takes streamed PATCHes without Content-Range and a chunked closing PUT", async () => {
    const parts = [12 * MiB, 12 * MiB, 3 * MiB].map((n) => randomFillSync(Buffer.allocUnsafe(n)));
    const digest: Digest = `sha256:${createHash("sha256").update(Buffer.concat(parts)).digest("hex")}`;
    // A ReadableStream body has no length: fetch sends it with Transfer-Encoding: chunked.
    const streamOf = (buf: Buffer): ReadableStream<Uint8Array> =>
      new ReadableStream({
        start(controller) {
          for (let at = 0; at < buf.byteLength; at += MiB) controller.enqueue(buf.subarray(at, at + MiB));
          controller.close();
        },
      });
    let location = await openUpload(registry.url, "e2e/streamed");
    for (const part of parts.slice(0, -1)) {
      const res = await fetch(location, { method: "PATCH", body: streamOf(part), duplex: "half" } as RequestInit);
      expect(res.status, await res.text()).toBe(202);
      location = new URL(res.headers.get("location")!, registry.url).toString();
    }
    const put = await fetch(withQuery(location, { digest }), {
      method: "PUT",
      body: streamOf(parts.at(-1)!),
      duplex: "half",
    } as RequestInit);
    expect(put.status, await put.text()).toBe(201);

    const got = await streamedGet(`${registry.url}/v2/e2e/streamed/blobs/${digest}`, { "Accept-Encoding": "gzip" });
    expect(got.digest).toBe(digest);
    expect(got.headers["content-length"]).toBe(String(27 * MiB));
  });
});
