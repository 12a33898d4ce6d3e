/**
 * The storage invariants of docs/storage.md, checked after thousands of seeded interleavings of
 * concurrent requests and collections, over the real routes, Store and collector (on a
 * MemoryBucket whose every operation is a scheduling point; helpers/interleave.ts):
 *
 *   I1  a 201 for a blob means its bytes are readable from that repository until the link is deleted,
 *       before and after any collection;
 *   I2  no record or link names bytes that are gone;
 *   I3  of two racing operations on an upload session, one wins cleanly: PUT/DELETE, PUT/PUT, PATCH/PATCH;
 *   I4  a collection deletes only what nothing committed refers to (I1 after it), and never answers 500.
 *
 * Each scenario is one of the races of docs/storage.md, "Races that were seen", or a collection
 * racing pushes and mounts.
 *
 * Every scenario runs seeds 1..250; `INTERLEAVING_SEEDS=5000 npx vitest run --config
 * vitest.worker.config.mts test/worker/storage-interleavings.test.ts` runs more (CONTRIBUTING.md).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sha256 } from "../../core/oci/digest.ts";
import { keys } from "../../worker/storage/keys.ts";
import { World } from "./helpers/interleave.ts";
import { namesOnlyStoredBytes as storedBytesOnly, noOrphanData as noOrphans } from "./helpers/invariants.ts";
import {
  blobOf,
  close,
  keep,
  manifestOf,
  monolithic,
  mount,
  openSession,
  patch,
  pull,
  putManifest,
} from "./helpers/world-client.ts";

/** Interleavings per scenario unless INTERLEAVING_SEEDS asks for more (or fewer). */
const DEFAULT_SEEDS = 250;
const SEEDS = seedCount(env.INTERLEAVING_SEEDS);
/** Vitest's 60 s per test fits the default seeds; more seeds get proportionally more time. */
const TIMEOUT_MS = Math.max(60_000, Math.ceil((60_000 * SEEDS) / DEFAULT_SEEDS));

function seedCount(setting: string | undefined): number {
  if (setting === undefined || setting === "") return DEFAULT_SEEDS;
  const n = Number(setting);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`INTERLEAVING_SEEDS must be a positive integer, not "${setting}"`);
  return n;
}

/** What a settled task returned; a task that threw fails the scenario with its own error. */
function valueOf<T>(r: PromiseSettledResult<unknown> | undefined): T {
  if (!r) throw new Error("no such task");
  if (r.status === "rejected") throw r.reason;
  return r.value as T;
}

const noOrphanData = (w: World): Promise<void> => noOrphans(w.bucket);
const namesOnlyStoredBytes = (w: World): Promise<void> => storedBytesOnly(w.bucket);

/** The statuses a concurrent operation answered, every one from `allowed` (never a 500). */
function statuses(results: PromiseSettledResult<Response>[], allowed: number[][]): number[] {
  return results.map((r, i) => {
    if (r.status === "rejected") throw r.reason;
    expect(allowed[i], `operation ${i} answered ${r.value.status}`).toContain(r.value.status);
    return r.value.status;
  });
}

/**
 * Runs `scenario` for every seed; on a failure, reports the seed and the interleaving so that it
 * can be replayed.
 */
async function forEverySeed(scenario: (w: World) => Promise<void>): Promise<void> {
  for (let seed = 1; seed <= SEEDS; seed++) {
    const w = new World(seed);
    try {
      await scenario(w);
    } catch (e) {
      const trace = w.scheduler.choices.join("\n  ");
      throw new Error(`seed ${seed} failed: ${(e as Error).message}\ninterleaving:\n  ${trace}`, { cause: e });
    }
  }
}

describe("storage invariants under interleavings", { timeout: TIMEOUT_MS }, () => {
  it("a PUT closing a streamed upload races a DELETE of the session: one wins, a 201 stays readable, later pushes are intact", async () => {
    const blob = await blobOf("item 1: close versus cancel");
    await forEverySeed(async (w) => {
      const location = await openSession(w, "team-a/model");
      expect((await patch(w, location, blob.bytes)).status).toBe(202);
      const [put, del] = statuses(
        await w.scheduler.run([() => close(w, location, blob.digest), () => w.request(location, { method: "DELETE" })]),
        [
          [201, 404],
          [204, 404],
        ],
      );
      expect([put, del].filter((s) => s === 201 || s === 204)).toHaveLength(1);
      if (put === 201) expect(await pull(w, "team-a/model", blob.digest)).toBe(blob.digest);
      if (put === 201) await keep(w, "team-a/model", blob);
      // Another tenant pushes the same bytes later: it must get them back, not a poisoned record.
      expect((await monolithic(w, "private/model", blob)).status).toBe(201);
      expect(await pull(w, "private/model", blob.digest)).toBe(blob.digest);
      await keep(w, "private/model", blob);
      await w.collect(w.now());
      await noOrphanData(w);
      expect(await pull(w, "private/model", blob.digest)).toBe(blob.digest);
      if (put === 201) expect(await pull(w, "team-a/model", blob.digest)).toBe(blob.digest);
      await namesOnlyStoredBytes(w);
    });
  });

  it("the same bytes pushed to two repositories at once, monolithic and by session, both survive a collection", async () => {
    const blob = await blobOf("item 2: shared allotment");
    const config = await blobOf("config");
    await forEverySeed(async (w) => {
      for (const repo of ["variants/a", "variants/b"]) expect((await monolithic(w, repo, config)).status).toBe(201);
      const location = await openSession(w, "variants/b");
      expect((await patch(w, location, blob.bytes)).status).toBe(202);
      statuses(
        await w.scheduler.run([() => monolithic(w, "variants/a", blob), () => close(w, location, blob.digest)]),
        [[201], [201]],
      );
      for (const repo of ["variants/a", "variants/b"]) {
        expect((await putManifest(w, repo, "v1", manifestOf(config, [blob]))).status).toBe(201);
      }
      await w.collect(w.now());
      for (const repo of ["variants/a", "variants/b"]) expect(await pull(w, repo, blob.digest)).toBe(blob.digest);
      await namesOnlyStoredBytes(w);
      // Both repositories use one copy: the record and both links name the same bytes.
      const locs = new Set(
        [
          keys.blob(blob.digest),
          keys.blobLink("variants/a", blob.digest),
          keys.blobLink("variants/b", blob.digest),
        ].map((k) => w.bucket.head(k).then((h) => h?.customMetadata?.loc)),
      );
      expect(new Set(await Promise.all(locs)).size).toBe(1);
    });
  });

  it("two PUTs closing one Content-Range session: 201 or 404, at least one 201, the blob intact", async () => {
    const blob = await blobOf("item 3: two closes of one session");
    await forEverySeed(async (w) => {
      const location = await openSession(w, "ml/model");
      const half = blob.bytes.byteLength / 2;
      expect((await patch(w, location, blob.bytes.subarray(0, half), 0)).status).toBe(202);
      expect((await patch(w, location, blob.bytes.subarray(half), half)).status).toBe(202);
      const got = statuses(
        await w.scheduler.run([() => close(w, location, blob.digest), () => close(w, location, blob.digest)]),
        [
          [201, 404],
          [201, 404],
        ],
      );
      expect(got).toContain(201);
      expect(await pull(w, "ml/model", blob.digest)).toBe(blob.digest);
      await keep(w, "ml/model", blob);
      await w.collect(w.now());
      await noOrphanData(w);
      expect(await pull(w, "ml/model", blob.digest)).toBe(blob.digest);
      await namesOnlyStoredBytes(w);
    });
  });

  it("two PATCHes of the same range: one 202, one 416, and the blob is the winner's bytes", async () => {
    const a = await blobOf("A");
    const b = await blobOf("B");
    await forEverySeed(async (w) => {
      const location = await openSession(w, "ml/model");
      const [first, second] = statuses(
        await w.scheduler.run([() => patch(w, location, a.bytes, 0), () => patch(w, location, b.bytes, 0)]),
        [
          [202, 416],
          [202, 416],
        ],
      );
      expect([first, second].sort()).toEqual([202, 416]);
      const winner = first === 202 ? a : b;
      const loser = first === 202 ? b : a;
      expect((await close(w, location, loser.digest)).status).toBe(400);
      const again = await openSession(w, "ml/model");
      expect((await patch(w, again, winner.bytes, 0)).status).toBe(202);
      expect((await close(w, again, winner.digest)).status).toBe(201);
      expect(await pull(w, "ml/model", winner.digest)).toBe(winner.digest);
      // The loser's piece was deleted by the loser itself: no data object is left that nothing names.
      await noOrphanData(w);
      await keep(w, "ml/model", winner);
      await w.collect(w.now());
      expect(await pull(w, "ml/model", winner.digest)).toBe(winner.digest);
      await noOrphanData(w);
    });
  });

  it("a PATCH racing the PUT that closes the session: the close sees whole chunks only", async () => {
    const blob = await blobOf("closing while a chunk arrives");
    await forEverySeed(async (w) => {
      const location = await openSession(w, "ml/model");
      const half = blob.bytes.byteLength / 2;
      expect((await patch(w, location, blob.bytes.subarray(0, half), 0)).status).toBe(202);
      const [patched, closed] = statuses(
        await w.scheduler.run([
          () => patch(w, location, blob.bytes.subarray(half), half),
          () => close(w, location, blob.digest),
        ]),
        [
          [202, 404],
          [201, 400, 404, 416],
        ],
      );
      // The close wins only with every byte it names; a chunk that lost never counts.
      if (closed === 201) expect(await pull(w, "ml/model", blob.digest)).toBe(blob.digest);
      else expect(await pull(w, "ml/model", blob.digest)).toBe(404);
      if (patched === 202 && closed !== 201) expect([400, 416]).toContain(closed);
      if (closed === 201) await keep(w, "ml/model", blob);
      await w.collect(w.now());
      await noOrphanData(w);
      if (closed === 201) expect(await pull(w, "ml/model", blob.digest)).toBe(blob.digest);
      await namesOnlyStoredBytes(w);
    });
  });

  it("a collection deleting an unlinked blob races a push and a mount of the same bytes", async () => {
    const blob = await blobOf("collected while re-pushed");
    await forEverySeed(async (w) => {
      // Pushed once, then unlinked: its record and bytes are old and unreferenced.
      expect((await monolithic(w, "old/repo", blob)).status).toBe(201);
      expect((await w.request(`/v2/old/repo/blobs/${blob.digest}`, { method: "DELETE" })).status).toBe(202);
      const started = w.now();
      const [, pushed, mounted] = await w.scheduler.run<Response | unknown>([
        () => w.collect(started),
        () => monolithic(w, "new/push", blob),
        () => mount(w, "new/mount", blob.digest),
      ]);
      const push = valueOf<Response>(pushed).status;
      const mnt = valueOf<Response>(mounted).status;
      expect(push).toBe(201);
      expect([201, 202]).toContain(mnt);
      expect(await pull(w, "new/push", blob.digest)).toBe(blob.digest);
      if (mnt === 201) expect(await pull(w, "new/mount", blob.digest)).toBe(blob.digest);
      await keep(w, "new/push", blob);
      if (mnt === 201) await keep(w, "new/mount", blob);
      await w.collect(w.now());
      await noOrphanData(w);
      expect(await pull(w, "new/push", blob.digest)).toBe(blob.digest);
      if (mnt === 201) expect(await pull(w, "new/mount", blob.digest)).toBe(blob.digest);
      await namesOnlyStoredBytes(w);
    });
  });

  it("a collection sweeping old links races a client that found them by HEAD and pushes a manifest", async () => {
    const layer = await blobOf("layer found by HEAD");
    const config = await blobOf("config found by HEAD");
    await forEverySeed(async (w) => {
      // Blobs pushed long ago and never referenced: the sweep would delete their links.
      for (const b of [layer, config]) expect((await monolithic(w, "ml/app", b)).status).toBe(201);
      const started = w.now();
      const push = async (): Promise<Response> => {
        for (const b of [layer, config]) {
          const head = await w.request(`/v2/ml/app/blobs/${b.digest}`, { method: "HEAD" });
          if (head.status !== 200) expect((await monolithic(w, "ml/app", b)).status).toBe(201);
        }
        return putManifest(w, "ml/app", "v1", manifestOf(config, [layer]));
      };
      const [collected, pushed] = await w.scheduler.run<unknown>([() => w.collect(started), push]);
      valueOf(collected);
      expect(valueOf<Response>(pushed).status).toBe(201);
      await w.collect(w.now());
      for (const b of [layer, config]) expect(await pull(w, "ml/app", b.digest)).toBe(b.digest);
      await namesOnlyStoredBytes(w);
    });
  });

  it("deleting a tag races a re-push of the image and a collection: a pushed tag pulls whole", async () => {
    const layer = await blobOf("re-pushed layer");
    const config = await blobOf("re-pushed config");
    await forEverySeed(async (w) => {
      for (const b of [layer, config]) expect((await monolithic(w, "ml/tagged", b)).status).toBe(201);
      const manifest = manifestOf(config, [layer]);
      expect((await putManifest(w, "ml/tagged", "v1", manifest)).status).toBe(201);
      const started = w.now();
      const repush = async (): Promise<Response> => {
        for (const b of [layer, config]) expect((await monolithic(w, "ml/tagged", b)).status).toBe(201);
        return putManifest(w, "ml/tagged", "v2", manifest);
      };
      const results = await w.scheduler.run<unknown>([
        () => w.request("/v2/ml/tagged/manifests/v1", { method: "DELETE" }),
        () => w.collect(started),
        repush,
      ]);
      expect([202, 404]).toContain(valueOf<Response>(results[0]).status);
      valueOf(results[1]);
      expect(valueOf<Response>(results[2]).status).toBe(201);
      await w.collect(w.now());
      expect((await w.request("/v2/ml/tagged/manifests/v2")).status).toBe(200);
      for (const b of [layer, config]) expect(await pull(w, "ml/tagged", b.digest)).toBe(b.digest);
      await namesOnlyStoredBytes(w);
    });
  });

  it("a manifest DELETE races a tag re-pointed elsewhere and a re-push of the same manifest: no tag is lost or left dangling", async () => {
    const layer = await blobOf("layer of A and B");
    const configA = await blobOf("config A");
    const configB = await blobOf("config B");
    await forEverySeed(async (w) => {
      for (const b of [layer, configA, configB]) expect((await monolithic(w, "ml/tags", b)).status).toBe(201);
      const a = manifestOf(configA, [layer]);
      const b = manifestOf(configB, [layer]);
      const digestA = await sha256(a);
      const digestB = await sha256(b);
      for (const tag of ["latest", "v1"]) expect((await putManifest(w, "ml/tags", tag, a)).status).toBe(201);
      const [deleted, moved, repushed] = statuses(
        await w.scheduler.run([
          () => w.request(`/v2/ml/tags/manifests/${digestA}`, { method: "DELETE" }),
          () => putManifest(w, "ml/tags", "latest", b),
          () => putManifest(w, "ml/tags", "v2", a),
        ]),
        [[202], [201], [201]],
      );
      expect([deleted, moved, repushed]).toEqual([202, 201, 201]);
      // The tag moved to B stays on B, whatever the DELETE of A did.
      const latest = await w.request("/v2/ml/tags/manifests/latest");
      expect(latest.status).toBe(200);
      expect(latest.headers.get("Docker-Content-Digest")).toBe(digestB);
      // No tag names a manifest that is gone.
      const listed = (await (await w.request("/v2/ml/tags/tags/list")).json()) as { tags: string[] };
      for (const tag of listed.tags) {
        expect((await w.request(`/v2/ml/tags/manifests/${tag}`, { method: "HEAD" })).status, tag).toBe(200);
      }
      expect(listed.tags).not.toContain("v1");
      await w.collect(w.now());
      expect((await w.request(`/v2/ml/tags/manifests/latest`)).status).toBe(200);
      expect(await pull(w, "ml/tags", layer.digest)).toBe(layer.digest);
      await namesOnlyStoredBytes(w);
    });
  });
});
