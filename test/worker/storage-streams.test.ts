/**
 * Storage that fails in the middle of a body, not at a call: an R2 read that breaks off while a
 * blob is served, an R2 write that breaks off while a chunk is stored, and a KV that fails every
 * call while a partition is asked. The registry over a MemoryBucket (helpers/interleave.ts World),
 * with the Workers Cache API of the test runtime behind its edge cache.
 */
import { describe, expect, it } from "vitest";
import { sha256 } from "../../core/oci/digest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import type { Bucket } from "../../worker/storage/bucket.ts";
import { blobCacheKey } from "../../worker/storage/edge-cache.ts";
import { keys } from "../../worker/storage/keys.ts";
import { anImage } from "../helpers/images/builder.ts";
import { pushContents } from "../helpers/images/push.ts";
import { randomBytes, MiB } from "./helpers/bytes.ts";
import { MemoryKv } from "./helpers/faults.ts";
import { World } from "./helpers/interleave.ts";
import * as client from "./helpers/world-client.ts";

const REPO = "streams/app";
const BROKEN = new Error("Network connection lost.");

/** A body that gives its first `cut` bytes, then fails as an R2 body does when its connection drops. */
function breaksOff(bytes: Uint8Array, cut: number): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream<Uint8Array>({
    pull(ctl) {
      if (sent) return ctl.error(BROKEN);
      sent = true;
      ctl.enqueue(bytes.slice(0, cut));
    },
  });
}

/** The bucket, with the bodies of GETs of `key` breaking off half-way while `broken()` holds. */
function brokenReads(bucket: Bucket, key: () => string | undefined): Bucket {
  return {
    ...bucketOf(bucket),
    get: async (k, options) => {
      const got = await bucket.get(k, options);
      if (!got || k !== key()) return got;
      const bytes = new Uint8Array(await got.arrayBuffer());
      return { ...got, body: breaksOff(bytes, bytes.byteLength / 2) } as R2ObjectBody;
    },
  };
}

/** The bucket, with puts under `prefix` failing once they have read `cut` bytes of their body, while `broken()` holds. */
function brokenWrites(bucket: Bucket, prefix: string, cut: number, broken: () => boolean): Bucket {
  return {
    ...bucketOf(bucket),
    put: async (key, value, options) => {
      if (!broken() || !key.startsWith(prefix) || !(value instanceof ReadableStream)) {
        return bucket.put(key, value, options);
      }
      const reader = (value as ReadableStream<Uint8Array>).getReader();
      for (let read = 0; read < cut;) {
        const r = await reader.read();
        if (r.done) break;
        read += r.value.byteLength;
      }
      await reader.cancel(BROKEN);
      throw BROKEN;
    },
  };
}

function bucketOf(b: Bucket): Bucket {
  return {
    head: (k) => b.head(k),
    get: (k, o) => b.get(k, o),
    put: (k, v, o) => b.put(k, v, o),
    delete: (k) => b.delete(k),
    list: (o) => b.list(o),
  };
}

/** Reads a response body to its end: the bytes, or the error that ended it. */
async function drain(res: Response): Promise<{ bytes: number; error?: unknown }> {
  const reader = res.body!.getReader();
  let bytes = 0;
  try {
    for (let r = await reader.read(); !r.done; r = await reader.read()) bytes += r.value.byteLength;
    return { bytes };
  } catch (error) {
    return { bytes, error };
  }
}

/** Waits for what a response left running after it (the cache fill), as the runtime's waitUntil would. */
async function afterResponse(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setTimeout(r, 10));
}

describe("storage streams that break off", () => {
  it("a blob GET whose R2 body breaks off ends the transfer as a failure, and the edge cache keeps nothing of it", async () => {
    let breaking: string | undefined;
    const w = new World(0, {
      storageFor: (bucket) => ({ bucket: brokenReads(bucket, () => breaking) }),
      vars: { CACHE_MAX_BLOB_BYTES: String(64 * MiB) },
    });
    const bytes = randomBytes(3 * MiB);
    const blob = { bytes, digest: await sha256(bytes) };
    expect((await client.monolithic(w, REPO, blob)).status).toBe(201);
    const key = blobCacheKey("http://registry.test/", REPO, blob.digest);
    await caches.default.delete(key);
    // The first GET leaves the cache's marker; the second fills the cache from its own R2 read.
    expect(await client.pull(w, REPO, blob.digest)).toBe(blob.digest);
    await afterResponse();
    breaking = (await w.bucket.head(keys.blob(blob.digest)))!.customMetadata!.loc;
    const attempts: [string, number, Record<string, string>][] = [
      ["a GET filling the cache", 200, {}],
      ["a ranged GET, served from R2 alone", 206, { Range: "bytes=0-" }],
    ];
    for (const [attempt, status, headers] of attempts) {
      const res = await w.request(`/v2/${REPO}/blobs/${blob.digest}`, { headers });
      expect(res.status, attempt).toBe(status);
      expect(res.headers.get("Content-Length")).toBe(String(bytes.byteLength));
      const got = await drain(res);
      // Never a complete-looking response: the body fails, short of its Content-Length.
      expect(got.error, attempt).toBeDefined();
      expect(got.bytes, attempt).toBeLessThan(bytes.byteLength);
      await afterResponse();
      expect(await caches.default.match(key), `${attempt}: the cache kept a broken body`).toBeUndefined();
    }
    breaking = undefined;
    expect(await client.pull(w, REPO, blob.digest)).toBe(blob.digest);
  });

  it("a PATCH whose R2 write breaks off is answered 503; the session stays at its last Range, and the retried chunk completes the blob", async () => {
    let breaking = false;
    const w = new World(0, {
      storageFor: (bucket) => ({ bucket: brokenWrites(bucket, "data/", MiB, () => breaking) }),
    });
    const bytes = randomBytes(4 * MiB);
    const digest = await sha256(bytes);
    const first = bytes.subarray(0, MiB);
    const second = bytes.subarray(MiB);
    const at = await client.openSession(w, REPO);
    expect((await client.patch(w, at, first, 0)).status).toBe(202);
    breaking = true;
    const failed = await client.patch(w, at, second, MiB);
    const text = await failed.text();
    expect(failed.status, text).toBe(503);
    expect((JSON.parse(text) as { errors: { code: string }[] }).errors[0]?.code).toBe("UNAVAILABLE");
    breaking = false;
    const status = await w.request(at);
    expect(status.status).toBe(204);
    expect(status.headers.get("Range")).toBe(`0-${MiB - 1}`);
    expect((await client.patch(w, at, second, MiB)).status).toBe(202);
    expect((await client.close(w, at, digest)).status).toBe(201);
    expect(await client.pull(w, REPO, digest)).toBe(digest);
  });

  it("a partition request whose KV reads and writes all fail is answered as with a working KV", async () => {
    const img = await anImage()
      .randomLayers(1, 256)
      .allotmentBytes(128)
      .allotment(0, 0)
      .allotment(0, 1)
      .index(false)
      .build();
    let kvCalls = 0;
    const failingKv = new Proxy(new MemoryKv(), {
      get: () => () => {
        kvCalls++;
        return Promise.reject(new Error("KV GET failed: 503 Service Unavailable"));
      },
    }) as unknown as KVNamespace;
    const answers: string[] = [];
    for (const kv of [new MemoryKv() as unknown as KVNamespace, failingKv]) {
      const w = new World(0, { storageFor: (bucket) => ({ bucket, kv }) });
      await pushContents({ fetch: (p, init) => w.request(p, init), concurrency: 1 }, REPO, img);
      expect((await client.putManifest(w, REPO, "v1", img.bytes, img.mediaType)).status).toBe(201);
      for (let i = 0; i < 2; i++) {
        const res = await w.request(`/v2/${REPO}/manifests/v1--0.1.0.1`, {
          headers: { Accept: MediaType.OciManifest },
        });
        const body = await res.text();
        expect(res.status, body).toBe(200);
        answers.push(body);
        const m = JSON.parse(body) as { config: { digest: string }; layers: { digest: string }[] };
        for (const d of [m.config.digest, ...m.layers.map((l) => l.digest)]) {
          expect(await client.pull(w, REPO, d as `sha256:${string}`)).toBe(d);
        }
      }
    }
    expect(kvCalls, "the partition asked KV").toBeGreaterThan(0);
    expect(new Set(answers).size).toBe(1);
  });
});
