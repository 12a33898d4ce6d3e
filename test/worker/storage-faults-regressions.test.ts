/**
 * One test per bug the fault matrix (storage-faults.test.ts) found, each the smallest case that
 * showed it: a storage call failing at one point of one request.
 */
import { describe, expect, it } from "vitest";
import { putBlocks, BlockSource } from "../../worker/storage/blocks.ts";
import type { Bucket } from "../../worker/storage/bucket.ts";
import { keys } from "../../worker/storage/keys.ts";
import { MemoryBucket } from "../../worker/storage/memory-bucket.ts";
import { StorageError } from "../../worker/storage/storage-error.ts";
import { FaultPlan, faultyBucket, FaultWorld } from "./helpers/faults.ts";
import { namesOnlyStoredBytes, noIntentNotes, storageConsistent } from "./helpers/invariants.ts";
import * as client from "./helpers/world-client.ts";

const REPO = "regress/app";

async function expectUnavailable(res: Response): Promise<void> {
  const text = await res.text();
  expect(res.status, text).toBe(503);
  expect((JSON.parse(text) as { errors: { code: string }[] }).errors[0]?.code).toBe("UNAVAILABLE");
}

/** Rejects when `work` takes longer than a second: every storage call here is in memory. */
function promptly<T>(work: Promise<T>): Promise<T> {
  return Promise.race([
    work,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error("hung for 1 s")), 1000)),
  ]);
}

/** A monolithic push into a fresh world under `plan`, which must be answered 503 UNAVAILABLE. */
async function failedPush(plan: FaultPlan): Promise<{ f: FaultWorld; blob: client.Blob }> {
  const f = new FaultWorld();
  const blob = await client.blobOf("a monolithic push that fails");
  f.armed = plan;
  await expectUnavailable(await client.monolithic(f.w, REPO, blob));
  return { f, blob };
}

describe("storage faults: regressions", () => {
  it("putBlocks ends with the put's error when R2 fails before reading the body, instead of hanging", async () => {
    const failing: Bucket = {
      ...new MemoryBucket(),
      put: () => Promise.reject(new Error("We encountered an internal error. Please try again.")),
    } as unknown as Bucket;
    // Three blocks: the copy would wait for room for the second write forever.
    const body = new Blob([new Uint8Array(3 * 1024 * 1024)]).stream();
    const copy = putBlocks(failing, "data/x", new BlockSource(body), 3 * 1024 * 1024, async () => undefined, {});
    await expect(promptly(copy)).rejects.toThrow("internal error");
  });

  it("a monolithic upload whose R2 put fails is answered 503 UNAVAILABLE, not 400 SIZE_INVALID", async () => {
    const { f, blob } = await failedPush(FaultPlan.at("R2 put data/", "throw"));
    expect((await client.monolithic(f.w, REPO, blob)).status).toBe(201);
  });

  it("a storage fault in a manifest PUT is answered 503 UNAVAILABLE, not 500", async () => {
    const f = new FaultWorld();
    const [config, layer] = [await client.blobOf("config"), await client.blobOf("layer")];
    for (const b of [config, layer]) expect((await client.monolithic(f.w, REPO, b)).status).toBe(201);
    f.armed = FaultPlan.at("R2 put repos/regress/app/_tags/", "lost");
    await expectUnavailable(await client.putManifest(f.w, REPO, "v1", client.manifestOf(config, [layer])));
  });

  it("closing a session whose piece read fails is answered 503, not 400 BLOB_UPLOAD_INVALID, and the retry closes it", async () => {
    const f = new FaultWorld();
    const blob = await client.blobOf("two chunks, a piece read fails");
    const at = await client.openSession(f.w, REPO);
    const half = blob.bytes.byteLength / 2;
    expect((await client.patch(f.w, at, blob.bytes.subarray(0, half), 0)).status).toBe(202);
    expect((await client.patch(f.w, at, blob.bytes.subarray(half), half)).status).toBe(202);
    f.armed = FaultPlan.at("R2 get data/", "throw");
    await expectUnavailable(await client.close(f.w, at, blob.digest));
    expect((await client.close(f.w, at, blob.digest)).status).toBe(201);
    expect(await client.pull(f.w, REPO, blob.digest)).toBe(blob.digest);
  });

  it("a commit whose record write answer was lost keeps the copy the record names (commitOwn deleted it)", async () => {
    const { f, blob } = await failedPush(FaultPlan.at("R2 put blobs/", "lost"));
    // The record landed: the bytes it names must still be there, for this repository's retry and for any other.
    expect(await f.w.bucket.head(keys.blob(blob.digest))).not.toBeNull();
    await namesOnlyStoredBytes(f.w.bucket);
    expect((await client.monolithic(f.w, REPO, blob)).status).toBe(201);
    expect(await client.pull(f.w, REPO, blob.digest)).toBe(blob.digest);
  });

  it("a PATCH whose session write answer was lost reads the session back and answers 202 with the new Range", async () => {
    const f = new FaultWorld();
    const blob = await client.blobOf("patch, session write lost");
    const at = await client.openSession(f.w, REPO);
    f.armed = FaultPlan.at("R2 put uploads/", "lost");
    const res = await client.patch(f.w, at, blob.bytes, 0);
    expect(res.status, await res.clone().text()).toBe(202);
    expect(res.headers.get("Range")).toBe(`0-${blob.bytes.byteLength - 1}`);
    await storageConsistent(f.w.bucket);
    expect((await client.close(f.w, at, blob.digest)).status).toBe(201);
    expect(await client.pull(f.w, REPO, blob.digest)).toBe(blob.digest);
  });

  it("a retried close finishes the session its first attempt sealed, instead of 404 BLOB_UPLOAD_UNKNOWN", async () => {
    const f = new FaultWorld();
    const blob = await client.blobOf("close sealed, then crashed");
    const at = await client.openSession(f.w, REPO);
    expect((await client.patch(f.w, at, blob.bytes, 0)).status).toBe(202);
    // The first PUT seals the session (closing), then its isolate dies before the blob is committed.
    f.armed = FaultPlan.at("R2 head blobs/", "crash");
    await client.close(f.w, at, blob.digest).catch(() => undefined);
    expect((await client.close(f.w, at, blob.digest)).status).toBe(201);
    expect(await client.pull(f.w, REPO, blob.digest)).toBe(blob.digest);
    // A PUT with another digest does not take the sealed session.
    const other = await client.openSession(f.w, REPO);
    expect((await client.patch(f.w, other, blob.bytes, 0)).status).toBe(202);
    f.armed = FaultPlan.at("R2 head blobs/", "throw");
    expect((await client.close(f.w, other, blob.digest)).status).toBe(503);
    expect((await client.close(f.w, other, (await client.blobOf("else")).digest)).status).toBe(404);
  });

  it("a push whose catalog marker write fails still answers 201, and the collector writes the marker", async () => {
    const f = new FaultWorld();
    const blob = await client.blobOf("catalog marker fails");
    f.armed = FaultPlan.at("R2 put catalog/", "throw");
    expect((await client.monolithic(f.w, REPO, blob)).status).toBe(201);
    expect(await f.w.bucket.head(keys.catalog(REPO))).toBeNull();
    await f.w.collect(f.w.now());
    expect(await f.w.bucket.head(keys.catalog(REPO))).not.toBeNull();
  });

  it("an intent note a faulted manifest DELETE left behind is cleared by the next collection", async () => {
    const f = new FaultWorld();
    const [config, layer] = [await client.blobOf("config"), await client.blobOf("layer")];
    for (const b of [config, layer]) expect((await client.monolithic(f.w, REPO, b)).status).toBe(201);
    const manifest = client.manifestOf(config, [layer]);
    expect((await client.putManifest(f.w, REPO, "v1", manifest)).status).toBe(201);
    const digest = (await f.w.request(`/v2/${REPO}/manifests/v1`)).headers.get("Docker-Content-Digest")!;
    f.armed = FaultPlan.at("R2 delete gc/intent/", "throw");
    await expectUnavailable(await f.w.request(`/v2/${REPO}/manifests/${digest}`, { method: "DELETE" }));
    expect(f.w.bucket.keys().filter((k) => k.startsWith(keys.gcIntentPrefix))).toHaveLength(1);
    f.w.advance(2 * 60_000);
    await f.w.collect(f.w.now());
    noIntentNotes(f.w.bucket);
  });

  it("a collection whose storage fails rejects with a StorageError (answered 503), not an internal error", async () => {
    const f = new FaultWorld();
    expect((await client.monolithic(f.w, REPO, await client.blobOf("collected"))).status).toBe(201);
    const failing = faultyBucket(f.w.bucket, FaultPlan.at("R2 list", "throw"));
    await expect(f.w.collect(f.w.now(), failing)).rejects.toBeInstanceOf(StorageError);
  });
});
