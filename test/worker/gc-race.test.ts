/**
 * Pushes that race a collection, made to happen at exact points through the collector's hooks:
 * between a repository's mark and its sweep, and between the repository sweeps and the global
 * listing of links. Every blob and manifest such a push relies on must survive.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { collect } from "../../worker/gc/collector.ts";
import { DEFAULTS, type GcConfig } from "../../worker/config.ts";
import { keys } from "../../worker/storage/keys.ts";
import { randomLayer } from "../helpers/images/builder.ts";
import { pushManifest as pushManifestAgain } from "../helpers/images/push.ts";
import type { BuiltImage } from "../helpers/images/types.ts";
import { worker } from "./helpers/registry.ts";
import { call, pullDigest, pushBlob, pushManifest, tdfsImageOf, tick, wipeBucket } from "./gc-registry.ts";

const NOW: GcConfig = {
  graceMs: 0,
  uploadTtlMs: DEFAULTS.uploadTtlSeconds * 1000,
  derivedTtlMs: DEFAULTS.gcDerivedTtlSeconds * 1000,
  maxOperations: 100_000,
};
const REPO = "race/models";

/** An image whose tag was deleted: all of it is garbage once the collection starts. */
async function untaggedImage() {
  const img = await tdfsImageOf(
    [await randomLayer(), await randomLayer()],
    [await randomLayer(), await randomLayer()],
  ).pushTo(worker, REPO, "old");
  expect((await call(`/v2/${REPO}/manifests/old`, { method: "DELETE" })).status).toBe(202);
  await tick();
  return img;
}

describe("a push that races a collection", () => {
  beforeEach(wipeBucket);

  it("keeps a new image pushed between mark and sweep, even where it uploads blobs the collection had found unreferenced", async () => {
    const old = await untaggedImage();
    const reused = old.platforms[0]!.layers; // the two base layers
    let pushed: BuiltImage | undefined;

    const report = await collect(env.BLOBS, NOW, {
      hooks: {
        afterMark: async (repo) => {
          if (repo !== REPO) return;
          // A client uploads the old blobs again (the registry keeps the stored bytes, writes fresh links) and new ones.
          pushed = await tdfsImageOf(
            [...reused, await randomLayer()],
            [await randomLayer(), old.platforms[0]!.allotments.at(-1)!.layer],
          ).pushTo(worker, REPO, "new");
        },
      },
    });

    expect(pushed).toBeDefined();
    expect((await call(`/v2/${REPO}/manifests/new`)).status).toBe(200);
    for (const b of pushed!.blobs) expect(await pullDigest(REPO, b.digest)).toBe(b.digest);
    // What only the old image used is gone.
    expect(await env.BLOBS.head(keys.blob(old.platforms[0]!.field!.digest))).toBeNull();
    expect(await env.BLOBS.head(keys.blob(old.platforms[0]!.config.digest))).toBeNull();
    expect(report.complete).toBe(true);
  });

  it("puts back the links of a re-pushed manifest whose client skipped the uploads because HEAD found the blobs", async () => {
    const old = await untaggedImage();
    let headStatuses: number[] = [];

    const report = await collect(env.BLOBS, NOW, {
      hooks: {
        afterMark: async (repo) => {
          if (repo !== REPO) return;
          // Like docker: HEAD every blob, upload none (all there), then PUT the same manifest by tag.
          headStatuses = await Promise.all(
            old.blobs.map(async (b) => (await call(`/v2/${REPO}/blobs/${b.digest}`, { method: "HEAD" })).status),
          );
          await pushManifestAgain(worker, REPO, "old", old);
        },
      },
    });

    expect(headStatuses.every((s) => s === 200)).toBe(true);
    // Nothing of the image is lost: the re-push rewrote the manifest (kept or put back), and the
    // repair put back every link the sweep deleted after the HEADs.
    expect(report.restored).toBeGreaterThanOrEqual(old.blobs.length);
    expect(report.total).toEqual({ objects: 0, bytes: 0 });
    expect(await env.BLOBS.head(keys.fieldFacts(REPO, old.platforms[0]!.field!.digest))).not.toBeNull();
    expect((await call(`/v2/${REPO}/manifests/old`)).status).toBe(200);
    for (const b of old.blobs) expect(await pullDigest(REPO, b.digest)).toBe(b.digest);
  });

  it("puts back an untagged child manifest that a new index references", async () => {
    const old = await untaggedImage();
    const report = await collect(env.BLOBS, NOW, {
      hooks: {
        afterMark: async (repo) => {
          if (repo !== REPO) return;
          await pushManifest(REPO, "multi", {
            schemaVersion: 2,
            mediaType: "application/vnd.oci.image.index.v1+json",
            manifests: [{ ...old.descriptor, platform: { os: "linux", architecture: "amd64" } }],
          });
        },
      },
    });
    // The manifest, its links and its field facts were deleted by the sweep and put back.
    expect(report.restored).toBe(1 + old.blobs.length + 1);
    expect(report.total).toEqual({ objects: 0, bytes: 0 });
    expect(await env.BLOBS.head(keys.fieldFacts(REPO, old.platforms[0]!.field!.digest))).not.toBeNull();
    expect((await call(`/v2/${REPO}/manifests/${old.descriptor.digest}`)).status).toBe(200);
    for (const b of old.blobs) expect(await pullDigest(REPO, b.digest)).toBe(b.digest);
  });

  it("keeps a blob mounted into another repository after the repository sweep", async () => {
    const old = await untaggedImage();
    const mounted = old.blobs.at(-1)!; // an allotment
    const report = await collect(env.BLOBS, NOW, {
      hooks: {
        beforeBlobs: async () => {
          // Its only link was just swept, but the bytes are still stored: a mount links them again.
          const r = await call(`/v2/race/elsewhere/blobs/uploads/?mount=${mounted.digest}`, { method: "POST" });
          expect(r.status).toBe(201);
        },
      },
    });
    expect(await pullDigest("race/elsewhere", mounted.digest)).toBe(mounted.digest);
    expect(await env.BLOBS.head(keys.blob(old.platforms[0]!.config.digest))).toBeNull();
    expect(report.freed.blobs.objects).toBe(old.blobs.length - 1);
  });

  it("keeps blobs uploaded during the collection whose manifest has not arrived yet", async () => {
    const old = await untaggedImage();
    // One new blob, and one the collection had found unreferenced: uploading it again rewrites its link.
    const early = await randomLayer();
    const again = old.blobs[1]!;
    let late = early;
    await collect(env.BLOBS, NOW, {
      hooks: {
        afterMark: async () => {
          await pushBlob(REPO, early);
          await pushBlob(REPO, again);
        },
        beforeBlobs: async () => {
          late = await randomLayer();
          await pushBlob("race/fresh", late);
        },
      },
    });
    expect(await pullDigest(REPO, early.digest)).toBe(early.digest);
    expect(await pullDigest(REPO, again.digest)).toBe(again.digest);
    expect(await env.BLOBS.head(keys.blob(old.platforms[0]!.config.digest))).toBeNull();
    expect(await pullDigest("race/fresh", late.digest)).toBe(late.digest);
  });
});
