/**
 * Garbage collection of 2DFS images pushed through the real routes: what a collection frees and
 * what it keeps, read back from the bucket itself.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import type { Digest } from "../../core/oci/digest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { collect } from "../../worker/gc/collector.ts";
import { DEFAULTS, type GcConfig } from "../../worker/config.ts";
import { keys } from "../../worker/storage/keys.ts";
import { randomLayer } from "../helpers/images/builder.ts";
import type { MemoryBlob } from "../helpers/images/types.ts";
import { worker } from "./helpers/registry.ts";
import {
  call,
  keysUnder,
  pullDigest,
  pushManifest,
  pushReferrer,
  snapshotBucket,
  tdfsImageOf,
  tick,
  wipeBucket,
} from "./gc-registry.ts";

/** No grace period: everything written before the collection starts is old enough to go. */
const NOW: GcConfig = {
  graceMs: 0,
  uploadTtlMs: DEFAULTS.uploadTtlSeconds * 1000,
  derivedTtlMs: DEFAULTS.gcDerivedTtlSeconds * 1000,
  maxOperations: 100_000,
};

const REPO = "gc/models";
const OTHER = "gc/other";

/**
 * Image A (tag `a`) and image B (an index tagged `b` over an untagged manifest) share a base
 * layer and an allotment; a third repository links one of A's own layers; B and A each have a
 * signature (referrer). Deleting tag `a` must free A's manifest, config, field, own layers and
 * own allotments, and A's signature, and nothing else.
 */
async function twoImages() {
  const sharedBase = await randomLayer();
  const sharedCell = await randomLayer();
  const aLayer = await randomLayer(4096);
  const aLayerAlsoElsewhere = await randomLayer(1024);
  const aCells = [await randomLayer(3000), await randomLayer(1500)];
  const bLayer = await randomLayer();
  const bCell = await randomLayer();

  const a = await tdfsImageOf([sharedBase, aLayer, aLayerAlsoElsewhere], [aCells[0]!, sharedCell, aCells[1]!]).pushTo(
    worker,
    REPO,
    "a",
  );
  const bManifest = await tdfsImageOf([sharedBase, bLayer], [sharedCell, bCell]).pushTo(worker, REPO);
  const bIndex = await pushManifest(REPO, "b", {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [{ ...bManifest.descriptor, platform: { os: "linux", architecture: "amd64" } }],
  });
  const aSig = await pushReferrer(REPO, a.descriptor);
  const bSig = await pushReferrer(REPO, bManifest.descriptor);
  // Another repository links one of A's layers: the blob stays, only A's link goes.
  await tdfsImageOf([aLayerAlsoElsewhere], [await randomLayer()]).pushTo(worker, OTHER, "c");
  // Facts recorded for each field at push, keyed by the field's digest.
  for (const img of [a, bManifest]) await env.BLOBS.put(keys.fieldFacts(REPO, img.platforms[0]!.field!.digest), "{}");

  const uniqueToA: MemoryBlob[] = [a.platforms[0]!.config, a.platforms[0]!.field!, aLayer, ...aCells, aSig.blob];
  return { a, bManifest, bIndex, aSig, bSig, uniqueToA, aLayerAlsoElsewhere };
}

const blobKeys = (blobs: { digest: Digest }[]) => blobs.map((b) => keys.blob(b.digest));

describe("garbage collection of 2DFS images", () => {
  beforeEach(wipeBucket);

  it("frees exactly the unique blobs of an untagged image, allotments included, and keeps every shared one", async () => {
    const img = await twoImages();
    expect((await call(`/v2/${REPO}/manifests/a`, { method: "DELETE" })).status).toBe(202);
    const blobsBefore = await keysUnder(keys.blobsPrefix);
    await tick();

    const report = await collect(env.BLOBS, NOW);

    const blobsAfter = await keysUnder(keys.blobsPrefix);
    const freed = [...blobsBefore].filter((k) => !blobsAfter.has(k)).sort();
    expect(freed).toEqual(blobKeys(img.uniqueToA).sort());
    expect([...blobsAfter].every((k) => blobsBefore.has(k))).toBe(true);

    // In the repository: A's manifest, its signature, A's links (the one shared with OTHER too) and A's field facts.
    const repoKeys = await keysUnder(keys.repoPrefix(REPO));
    expect(repoKeys.has(keys.manifest(REPO, img.a.descriptor.digest))).toBe(false);
    expect(repoKeys.has(keys.manifest(REPO, img.aSig.manifest.digest))).toBe(false);
    expect(repoKeys.has(keys.referrer(REPO, img.a.descriptor.digest, img.aSig.manifest.digest))).toBe(false);
    expect(repoKeys.has(keys.blobLink(REPO, img.aLayerAlsoElsewhere.digest))).toBe(false);
    expect(repoKeys.has(keys.fieldFacts(REPO, img.a.platforms[0]!.field!.digest))).toBe(false);
    for (const b of img.uniqueToA) expect(repoKeys.has(keys.blobLink(REPO, b.digest))).toBe(false);
    expect(repoKeys.has(keys.fieldFacts(REPO, img.bManifest.platforms[0]!.field!.digest))).toBe(true);
    expect(repoKeys.has(keys.referrer(REPO, img.bManifest.descriptor.digest, img.bSig.manifest.digest))).toBe(true);

    // B pulls whole: the index, its manifest, every blob and every allotment, and its signature.
    expect((await call(`/v2/${REPO}/manifests/b`)).status).toBe(200);
    expect((await call(`/v2/${REPO}/manifests/${img.bManifest.descriptor.digest}`)).status).toBe(200);
    for (const b of [...img.bManifest.blobs, img.bSig.blob]) expect(await pullDigest(REPO, b.digest)).toBe(b.digest);
    const referrers = (await (await call(`/v2/${REPO}/referrers/${img.bManifest.descriptor.digest}`)).json()) as {
      manifests: { digest: string }[];
    };
    expect(referrers.manifests.map((m) => m.digest)).toEqual([img.bSig.manifest.digest]);
    // A is gone from REPO; the blob shared with OTHER still pulls from OTHER.
    expect((await call(`/v2/${REPO}/manifests/${img.a.descriptor.digest}`)).status).toBe(404);
    expect(await pullDigest(REPO, img.uniqueToA[0]!.digest)).toBe(404);
    expect(await pullDigest(OTHER, img.aLayerAlsoElsewhere.digest)).toBe(img.aLayerAlsoElsewhere.digest);

    const uniqueBytes = img.uniqueToA.reduce((n, b) => n + b.bytes.byteLength, 0);
    expect(report.complete).toBe(true);
    expect(report.dryRun).toBe(false);
    expect(report.repositories).toBe(2);
    // Records go with the last link; the bytes go with them, as data objects nothing names any more.
    expect(report.freed.blobs.objects).toBe(img.uniqueToA.length);
    expect(report.freed.data).toEqual({ objects: img.uniqueToA.length, bytes: uniqueBytes });
    expect(report.freed.manifests.objects).toBe(2);
    expect(report.freed.referrers.objects).toBe(1);
    expect(report.freed.links.objects).toBe(img.uniqueToA.length + 1);
    expect(report.freed.fieldFacts.objects).toBe(1);
    expect(report.restored).toBe(0);
    expect(report.skipped).toEqual([]);
    expect(await env.BLOBS.head(keys.gcState)).toBeNull();
    expect(((await (await env.BLOBS.get(keys.gcLastReport))!.json()) as { runId: string }).runId).toBe(report.runId);

    // A second collection finds nothing left to free.
    await tick();
    const again = await collect(env.BLOBS, NOW);
    expect(again.total).toEqual({ objects: 0, bytes: 0 });
  });

  it("keeps everything while the tag exists", async () => {
    await twoImages();
    const before = await keysUnder(keys.blobsPrefix);
    await tick();
    const report = await collect(env.BLOBS, NOW);
    expect(await keysUnder(keys.blobsPrefix)).toEqual(before);
    expect(report.total).toEqual({ objects: 0, bytes: 0 });
  });

  it("never deletes what is younger than the grace period", async () => {
    const img = await twoImages();
    await call(`/v2/${REPO}/manifests/a`, { method: "DELETE" });
    const before = await snapshotBucket();
    const report = await collect(env.BLOBS, { ...NOW, graceMs: 3600_000 });
    const after = await snapshotBucket();
    for (const [k, v] of before) expect(after.get(k), k).toBe(v);
    expect(report.total).toEqual({ objects: 0, bytes: 0 });
    expect(await pullDigest(REPO, img.a.platforms[0]!.field!.digest)).toBe(img.a.platforms[0]!.field!.digest);
  });

  it("a dry run changes nothing and reports what the real run then frees", async () => {
    const img = await twoImages();
    await call(`/v2/${REPO}/manifests/a`, { method: "DELETE" });
    await tick();
    const before = await snapshotBucket();

    const dry = await collect(env.BLOBS, NOW, { dryRun: true });

    expect(await snapshotBucket()).toEqual(before);
    const uniqueBytes = img.uniqueToA.reduce((n, b) => n + b.bytes.byteLength, 0);
    expect(dry.dryRun).toBe(true);
    expect(dry.complete).toBe(true);
    expect(dry.freed.blobs.objects).toBe(img.uniqueToA.length);
    expect(dry.freed.data).toEqual({ objects: img.uniqueToA.length, bytes: uniqueBytes });
    expect(dry.freed.manifests.objects).toBe(2);
    expect(dry.freed.links.objects).toBe(img.uniqueToA.length + 1);

    const real = await collect(env.BLOBS, NOW);
    expect(real.freed).toEqual(dry.freed);
    expect(real.total).toEqual(dry.total);
  });

  it("leaves a repository untouched when a reachable field cannot be read", async () => {
    const cell = await randomLayer();
    const img = await tdfsImageOf([await randomLayer()], [cell]).pushTo(worker, REPO, "broken");
    const stray = await tdfsImageOf([await randomLayer()], [await randomLayer()]).pushTo(worker, REPO);
    // Corrupt the stored field of the tagged image: its allotments can no longer be known.
    const fieldLink = await env.BLOBS.head(keys.blobLink(REPO, img.platforms[0]!.field!.digest));
    await env.BLOBS.put(fieldLink!.customMetadata!.loc!, "not a field");
    await tick();
    const before = await keysUnder(keys.repoPrefix(REPO));
    const report = await collect(env.BLOBS, NOW);
    expect(report.skipped).toEqual([
      { repository: REPO, reason: expect.stringContaining(img.platforms[0]!.field!.digest) },
    ]);
    expect(await keysUnder(keys.repoPrefix(REPO))).toEqual(before);
    expect(await pullDigest(REPO, cell.digest)).toBe(cell.digest);
    expect(await pullDigest(REPO, stray.platforms[0]!.field!.digest)).toBe(stray.platforms[0]!.field!.digest);
  });
});
