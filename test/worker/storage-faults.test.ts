/**
 * The fault matrix: every write path of the registry (and the collector, and a partition request)
 * with its k-th storage call failing, for every k the path makes and each kind of fault
 * (helpers/faults.ts: the call throws; it happens but its answer is lost; the isolate dies there).
 * After each case:
 *
 *   - I2, I5 and I6 hold (helpers/invariants.ts);
 *   - the client got a 2xx only if what it wrote reads back; otherwise 503 UNAVAILABLE as OCI
 *     error JSON, never a 400 or 500 and never a hang (a crashed request has no answer);
 *   - the client's retry of the same operation succeeds and reads back correctly;
 *   - a collection with the clock past the grace period and every intent note's expiry removes
 *     nothing acknowledged, and leaves no orphan data and no intent note.
 *
 * The cases run in a seeded random order: FAULT_SEED=<n> replays one (CONTRIBUTING.md); unset, a
 * random seed is printed. A failure names the seed, path, k, kind and the storage trace.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { sha256, type Digest } from "../../core/oci/digest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import type { Bucket } from "../../worker/storage/bucket.ts";
import { StorageError } from "../../worker/storage/storage-error.ts";
import { anImage } from "../helpers/images/builder.ts";
import { pushContents } from "../helpers/images/push.ts";
import type { BuiltImage } from "../helpers/images/types.ts";
import { Crash, FAULT_KINDS, FaultPlan, faultyBucket, FaultWorld, type FaultKind } from "./helpers/faults.ts";
import { prng } from "./helpers/interleave.ts";
import { noIntentNotes, noOrphanData, storageConsistent } from "./helpers/invariants.ts";
import * as client from "./helpers/world-client.ts";
import type { Blob } from "./helpers/world-client.ts";

const SEED = seedFrom(env.FAULT_SEED);
/** A request or collection that takes longer than this hangs: every storage call here is in memory. */
const HANG_MS = 5_000;
/** Past the grace period (0 here) and every intent note's expiry (60 s). */
const LATER_MS = 5 * 60_000;
/** Past the upload lifetime of the harness's collector (24 h): open sessions expire. */
const DAY_MS = 25 * 3600_000;
const REPO = "fault/app";

function seedFrom(setting: string | undefined): number {
  if (setting === undefined || setting === "") return Math.floor(Math.random() * 2 ** 31);
  const n = Number(setting);
  if (!Number.isSafeInteger(n)) throw new Error(`FAULT_SEED must be an integer, not "${setting}"`);
  return n;
}

/** What an operation answered: a response, or (a collection) success or the error it threw. */
type Answer = Response;

interface FaultPath<C> {
  name: string;
  /** The state before the operation. */
  setup(f: FaultWorld): Promise<C>;
  /** The operation, once: one request (its storage armed by the runner), or a collection over `bucket`. */
  act(f: FaultWorld, c: C, bucket: Bucket): Promise<Answer>;
  /** The client's retry after a failure or no answer: asserts that it succeeds. */
  retry(f: FaultWorld, c: C): Promise<void>;
  /** What a success promised, read back. */
  acked(f: FaultWorld, c: C): Promise<void>;
  /** What the client does next (finish an upload, tag a manifest) so that a collection must keep it all. */
  finish?(f: FaultWorld, c: C): Promise<void>;
  /** What must read back after `finish` and a collection; `acked` unless said otherwise. */
  durable?(f: FaultWorld, c: C): Promise<void>;
  /** Whether a fault of this call may show to the client (a KV call may not: KV only caches). */
  mayShow?(label: string): boolean;
}

const blobs = {
  a: client.blobOf("the blob under test, A"),
  b: client.blobOf("another blob, B, that must survive"),
  config: client.blobOf("a config"),
};

async function expectCreated(res: Response, digest: Digest): Promise<void> {
  expect(res.status, await res.clone().text()).toBe(201);
  expect(res.headers.get("Docker-Content-Digest")).toBe(digest);
}

/**
 * A retried close: 201, or, when the first attempt finished everything but its answer (the session
 * is gone), 404 for the session with the blob there, which a client learns by HEAD before it
 * uploads again.
 */
async function expectClosed(f: FaultWorld, res: Response, blob: Blob): Promise<void> {
  if (res.status === 404 && (await f.w.request(`/v2/${REPO}/blobs/${blob.digest}`, { method: "HEAD" })).status === 200)
    return;
  await expectCreated(res, blob.digest);
}

async function expectPulls(f: FaultWorld, repo: string, blob: Blob): Promise<void> {
  expect(await client.pull(f.w, repo, blob.digest)).toBe(blob.digest);
}

/** A manifest reads back by `ref` with `digest`. */
async function expectManifest(f: FaultWorld, repo: string, ref: string, digest: Digest): Promise<void> {
  const r = await f.w.request(`/v2/${repo}/manifests/${ref}`, {
    headers: { Accept: [MediaType.OciManifest, MediaType.OciIndex].join(", ") },
  });
  expect(r.status, `${repo}:${ref}`).toBe(200);
  expect(await sha256(new Uint8Array(await r.arrayBuffer()))).toBe(digest);
}

async function expectNoManifest(f: FaultWorld, repo: string, ref: string): Promise<void> {
  expect((await f.w.request(`/v2/${repo}/manifests/${ref}`, { method: "HEAD" })).status, `${repo}:${ref}`).toBe(404);
}

/** A DELETE retried: done now, or done already by the attempt whose answer was lost. */
async function expectDeleted(res: Response): Promise<void> {
  expect([202, 404], await res.clone().text()).toContain(res.status);
}

/** A 2DFS image of one manifest: a base layer and a field of two small allotments. */
let tdfsBuilt: Promise<BuiltImage> | undefined;
function tdfsImage(): Promise<BuiltImage> {
  tdfsBuilt ??= anImage()
    .randomLayers(1, 256)
    .allotmentBytes(128)
    .allotment(0, 0)
    .allotment(0, 1, { compression: "none" })
    .index(false)
    .build();
  return tdfsBuilt;
}

/** Pushes a config and `layer` to `repo`; answers the manifest that names them, not pushed yet. */
async function pushPlain(f: FaultWorld, repo: string, layer: Blob): Promise<{ manifest: string; digest: Digest }> {
  const config = await blobs.config;
  for (const b of [config, layer]) await expectCreated(await client.monolithic(f.w, repo, b), b.digest);
  const manifest = client.manifestOf(config, [layer]);
  return { manifest, digest: await sha256(manifest) };
}

/** A blob pushed (or mounted) into REPO, by way of the session at `at` when there is one. */
interface BlobCase {
  blob: Blob;
  at: string;
}

/** What every path that stores a blob shares: the blob pulls back, and a tagged manifest keeps it. */
const blobPaths = (
  name: string,
  act: (f: FaultWorld, c: BlobCase) => Promise<Response>,
): Pick<FaultPath<BlobCase>, "name" | "act" | "acked" | "finish"> => ({
  name,
  act,
  acked: async (f, c) => expectPulls(f, REPO, c.blob),
  finish: async (f, c) => client.keep(f.w, REPO, c.blob),
});

const PATHS: FaultPath<never>[] = [
  {
    ...blobPaths("monolithic POST ?digest=", (f, c) => client.monolithic(f.w, REPO, c.blob)),
    setup: async () => ({ blob: await blobs.a, at: "" }),
    retry: async (f, c) => expectCreated(await client.monolithic(f.w, REPO, c.blob), c.blob.digest),
  } satisfies FaultPath<BlobCase>,
  {
    // The blob is recorded already: the request's own copy is redundant and goes.
    ...blobPaths("monolithic POST ?digest= of a blob another repository holds", (f, c) =>
      client.monolithic(f.w, REPO, c.blob),
    ),
    setup: async (f) => {
      const blob = await blobs.a;
      await expectCreated(await client.monolithic(f.w, "fault/other", blob), blob.digest);
      await client.keep(f.w, "fault/other", blob);
      return { blob, at: "" };
    },
    retry: async (f, c) => expectCreated(await client.monolithic(f.w, REPO, c.blob), c.blob.digest),
  } satisfies FaultPath<BlobCase>,
  {
    ...blobPaths("POST then PUT with the whole body", (f, c) => client.close(f.w, c.at, c.blob.digest, c.blob.bytes)),
    setup: async (f) => ({ blob: await blobs.a, at: await client.openSession(f.w, REPO) }),
    retry: async (f, c) => expectClosed(f, await client.close(f.w, c.at, c.blob.digest, c.blob.bytes), c.blob),
  } satisfies FaultPath<BlobCase>,
  {
    ...blobPaths("PUT ?digest= closing a session of one chunk", (f, c) => client.close(f.w, c.at, c.blob.digest)),
    setup: async (f) => {
      const blob = await blobs.a;
      const at = await client.openSession(f.w, REPO);
      expect((await client.patch(f.w, at, blob.bytes, 0)).status).toBe(202);
      return { blob, at };
    },
    retry: async (f, c) => expectClosed(f, await client.close(f.w, c.at, c.blob.digest), c.blob),
  } satisfies FaultPath<BlobCase>,
  {
    ...blobPaths("PUT ?digest= closing a session of two chunks", (f, c) => client.close(f.w, c.at, c.blob.digest)),
    setup: async (f) => {
      const blob = await blobs.a;
      const at = await client.openSession(f.w, REPO);
      const half = blob.bytes.byteLength / 2;
      expect((await client.patch(f.w, at, blob.bytes.subarray(0, half), 0)).status).toBe(202);
      expect((await client.patch(f.w, at, blob.bytes.subarray(half), half)).status).toBe(202);
      return { blob, at };
    },
    retry: async (f, c) => expectClosed(f, await client.close(f.w, c.at, c.blob.digest), c.blob),
  } satisfies FaultPath<BlobCase>,
  {
    ...blobPaths("PUT ?digest= closing a session with its last chunk", (f, c) =>
      client.close(f.w, c.at, c.blob.digest, c.blob.bytes.subarray(c.blob.bytes.byteLength / 2)),
    ),
    setup: async (f) => {
      const blob = await blobs.a;
      const at = await client.openSession(f.w, REPO);
      expect((await client.patch(f.w, at, blob.bytes.subarray(0, blob.bytes.byteLength / 2), 0)).status).toBe(202);
      return { blob, at };
    },
    retry: async (f, c) => {
      // The last chunk may have landed before the fault: the client asks where the session is.
      const half = c.blob.bytes.byteLength / 2;
      const status = await f.w.request(c.at);
      const rest = status.headers.get("Range") === `0-${half - 1}` ? c.blob.bytes.subarray(half) : undefined;
      await expectClosed(f, await client.close(f.w, c.at, c.blob.digest, rest), c.blob);
    },
  } satisfies FaultPath<BlobCase>,
  {
    name: "PATCH",
    setup: async (f) => ({ blob: await blobs.a, at: await client.openSession(f.w, REPO) }),
    act: (f, c) => client.patch(f.w, c.at, half(c.blob, 0), 0),
    retry: async (f, c) => {
      // As clients resume: ask where the session is, and send the chunk again unless it is there.
      const status = await f.w.request(c.at);
      expect(status.status, await status.clone().text()).toBe(204);
      if (status.headers.get("Range") === `0-${half(c.blob, 0).byteLength - 1}`) return;
      expect(status.headers.get("Range")).toBe("0-0");
      expect((await client.patch(f.w, c.at, half(c.blob, 0), 0)).status).toBe(202);
    },
    acked: async (f, c) => {
      const status = await f.w.request(c.at);
      expect(status.status).toBe(204);
      expect(status.headers.get("Range")).toBe(`0-${half(c.blob, 0).byteLength - 1}`);
    },
    finish: async (f, c) => {
      const rest = half(c.blob, 1);
      expect((await client.patch(f.w, c.at, rest, half(c.blob, 0).byteLength)).status).toBe(202);
      await expectCreated(await client.close(f.w, c.at, c.blob.digest), c.blob.digest);
      await client.keep(f.w, REPO, c.blob);
    },
    durable: async (f, c) => expectPulls(f, REPO, c.blob),
  } satisfies FaultPath<BlobCase>,
  {
    ...blobPaths("POST ?mount=&from=", (f, c) => client.mount(f.w, REPO, c.blob.digest, "fault/source")),
    setup: async (f) => {
      const blob = await blobs.a;
      await expectCreated(await client.monolithic(f.w, "fault/source", blob), blob.digest);
      return { blob, at: "" };
    },
    retry: async (f, c) => expectCreated(await client.mount(f.w, REPO, c.blob.digest, "fault/source"), c.blob.digest),
  } satisfies FaultPath<BlobCase>,
  {
    name: "manifest PUT by digest (no field)",
    setup: async (f) => pushPlain(f, REPO, await blobs.a),
    act: (f, c) => client.putManifest(f.w, REPO, c.digest, c.manifest),
    retry: async (f, c) => expectCreated(await client.putManifest(f.w, REPO, c.digest, c.manifest), c.digest),
    acked: async (f, c) => expectManifest(f, REPO, c.digest, c.digest),
    finish: async (f, c) => {
      await expectCreated(await client.putManifest(f.w, REPO, "v1", c.manifest), c.digest);
      await expectManifest(f, REPO, "v1", c.digest);
    },
  } satisfies FaultPath<{ manifest: string; digest: Digest }>,
  {
    name: "manifest PUT by tag with a 2DFS field",
    setup: async (f) => {
      const img = await tdfsImage();
      await pushContents(f.target(), REPO, img);
      return img;
    },
    act: (f, img) => client.putManifest(f.w, REPO, "v1", img.bytes, img.mediaType),
    retry: async (f, img) =>
      expectCreated(await client.putManifest(f.w, REPO, "v1", img.bytes, img.mediaType), img.digest),
    acked: async (f, img) => {
      await expectManifest(f, REPO, "v1", img.digest);
      for (const b of img.platforms[0]!.manifest.blobs) expect(await client.pull(f.w, REPO, b.digest)).toBe(b.digest);
      // The field's facts were recorded: a partition of it is answered.
      expect((await f.w.request(`/v2/${REPO}/manifests/v1--0.1.0.1`)).status).toBe(200);
    },
  } satisfies FaultPath<BuiltImage>,
  {
    name: "tag write (PUT of a stored manifest by a new tag)",
    setup: async (f) => {
      const pushed = await pushPlain(f, REPO, await blobs.a);
      await expectCreated(await client.putManifest(f.w, REPO, "v1", pushed.manifest), pushed.digest);
      return pushed;
    },
    act: (f, c) => client.putManifest(f.w, REPO, "v2", c.manifest),
    retry: async (f, c) => expectCreated(await client.putManifest(f.w, REPO, "v2", c.manifest), c.digest),
    acked: async (f, c) => {
      for (const tag of ["v1", "v2"]) await expectManifest(f, REPO, tag, c.digest);
    },
  } satisfies FaultPath<{ manifest: string; digest: Digest }>,
  {
    name: "manifest DELETE by digest",
    setup: async (f) => {
      const doomed = await pushPlain(f, REPO, await blobs.a);
      for (const tag of ["v1", "v2"])
        await expectCreated(await client.putManifest(f.w, REPO, tag, doomed.manifest), doomed.digest);
      const kept = await pushPlain(f, REPO, await blobs.b);
      await expectCreated(await client.putManifest(f.w, REPO, "other", kept.manifest), kept.digest);
      return { doomed: doomed.digest, kept: kept.digest };
    },
    act: (f, c) => f.w.request(`/v2/${REPO}/manifests/${c.doomed}`, { method: "DELETE" }),
    retry: async (f, c) => expectDeleted(await f.w.request(`/v2/${REPO}/manifests/${c.doomed}`, { method: "DELETE" })),
    acked: async (f, c) => {
      for (const ref of [c.doomed, "v1", "v2"]) await expectNoManifest(f, REPO, ref);
      await expectManifest(f, REPO, "other", c.kept);
      await expectPulls(f, REPO, await blobs.b);
    },
  } satisfies FaultPath<{ doomed: Digest; kept: Digest }>,
  {
    name: "blob DELETE",
    setup: async (f) => {
      const [a, b] = [await blobs.a, await blobs.b];
      for (const x of [a, b]) await expectCreated(await client.monolithic(f.w, REPO, x), x.digest);
      await client.keep(f.w, REPO, b);
      return { a, b };
    },
    act: (f, c) => f.w.request(`/v2/${REPO}/blobs/${c.a.digest}`, { method: "DELETE" }),
    retry: async (f, c) => expectDeleted(await f.w.request(`/v2/${REPO}/blobs/${c.a.digest}`, { method: "DELETE" })),
    acked: async (f, c) => {
      expect(await client.pull(f.w, REPO, c.a.digest)).toBe(404);
      await expectPulls(f, REPO, c.b);
    },
  } satisfies FaultPath<{ a: Blob; b: Blob }>,
  {
    name: "collection (every phase)",
    setup: async (f) => {
      // Garbage of every kind a collection frees: an upload session that expires, an untagged
      // manifest, an unreferenced link, a record and bytes no repository links any more.
      const [a, b] = [await blobs.a, await blobs.b];
      const session = await client.openSession(f.w, "fault/idle");
      expect((await client.patch(f.w, session, a.bytes, 0)).status).toBe(202);
      const untagged = await pushPlain(f, "fault/junk", a);
      await expectCreated(
        await client.putManifest(f.w, "fault/junk", untagged.digest, untagged.manifest),
        untagged.digest,
      );
      await expectCreated(await client.monolithic(f.w, "fault/unlinked", b), b.digest);
      expect((await f.w.request(`/v2/fault/unlinked/blobs/${b.digest}`, { method: "DELETE" })).status).toBe(202);
      // What must stay: a tagged image, and a 2DFS image whose allotments only its field names.
      const live = await pushPlain(f, REPO, b);
      await expectCreated(await client.putManifest(f.w, REPO, "v1", live.manifest), live.digest);
      const img = await tdfsImage();
      await pushContents(f.target(), "fault/model", img);
      await expectCreated(await client.putManifest(f.w, "fault/model", "v1", img.bytes, img.mediaType), img.digest);
      f.w.advance(DAY_MS);
      return { live: live.digest, img, session, junk: untagged.digest };
    },
    act: async (f, _c, bucket) => {
      try {
        await withTimeout(f.w.collect(f.w.now(), bucket), "the collection");
        return new Response(null, { status: 200 });
      } catch (e) {
        // What the app answers for it (worker/app.ts); anything else is a fault of ours.
        if (e instanceof StorageError) return new Response(null, { status: 503 });
        throw e;
      }
    },
    retry: async (f) => {
      await f.w.collect(f.w.now());
    },
    acked: async (f, c) => {
      await expectManifest(f, REPO, "v1", c.live);
      await expectPulls(f, REPO, await blobs.b);
      await expectManifest(f, "fault/model", "v1", c.img.digest);
      for (const b of c.img.platforms[0]!.manifest.blobs)
        expect(await client.pull(f.w, "fault/model", b.digest)).toBe(b.digest);
      await expectNoManifest(f, "fault/junk", c.junk);
      expect((await f.w.request(c.session)).status).toBe(404);
    },
  } satisfies FaultPath<{ live: Digest; img: BuiltImage; session: string; junk: Digest }>,
  {
    name: "partition GET of a semantic tag",
    setup: async (f) => {
      const img = await tdfsImage();
      await pushContents(f.target(), REPO, img);
      await expectCreated(await client.putManifest(f.w, REPO, "v1", img.bytes, img.mediaType), img.digest);
      return img;
    },
    act: (f) => f.w.request(`/v2/${REPO}/manifests/v1--0.1.0.1`, { headers: { Accept: MediaType.OciManifest } }),
    retry: async (f) => {
      expect((await f.w.request(`/v2/${REPO}/manifests/v1--0.1.0.1`)).status).toBe(200);
    },
    acked: async (f, img) => expectPartition(f, img),
    // KV only caches: whatever it does, the answer is the partition.
    mayShow: (label) => !label.startsWith("KV "),
  } satisfies FaultPath<BuiltImage>,
] as unknown as FaultPath<never>[];

function half(blob: Blob, which: 0 | 1): Uint8Array {
  const mid = blob.bytes.byteLength / 2;
  return which === 0 ? blob.bytes.subarray(0, mid) : blob.bytes.subarray(mid);
}

/** The partition of the second allotment: the base layer and that allotment, every blob of it served. */
async function expectPartition(f: FaultWorld, img: BuiltImage): Promise<void> {
  const r = await f.w.request(`/v2/${REPO}/manifests/v1--0.1.0.1`, { headers: { Accept: MediaType.OciManifest } });
  expect(r.status).toBe(200);
  const m = (await r.json()) as { config: { digest: Digest }; layers: { digest: Digest }[] };
  const p = img.platforms[0]!;
  expect(m.layers.map((l) => l.digest)).toEqual([...p.layers.map((l) => l.digest), p.allotments[1]!.layer.digest]);
  for (const d of [m.config.digest, ...m.layers.map((l) => l.digest)]) expect(await client.pull(f.w, REPO, d)).toBe(d);
}

async function withTimeout<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} hung for ${HANG_MS} ms`)), HANG_MS);
  });
  try {
    return await Promise.race([work, hang]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/** Lets work the request left running (after-response work, aborted streams) settle. */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 0));
}

/** Runs the path's operation under `plan`; answers null when the isolate died (no answer). */
async function runUnder(path: FaultPath<unknown>, f: FaultWorld, c: unknown, plan: FaultPlan): Promise<Answer | null> {
  f.armed = plan;
  let answer: Answer | null;
  try {
    answer = await withTimeout(path.act(f, c, faultyBucket(f.w.bucket, plan)), path.name);
  } catch (e) {
    if (!(e instanceof Crash) && !plan.crashed) throw e;
    answer = null;
  }
  f.armed = undefined;
  await settle();
  return plan.crashed ? null : answer;
}

/** The answer to a failed operation: 503 UNAVAILABLE, as OCI error JSON. */
async function expectUnavailable(res: Response): Promise<void> {
  const text = await res.clone().text();
  expect(res.status, `a storage fault answered ${res.status}: ${text}`).toBe(503);
  if (res.headers.get("Content-Type") === null) return; // The collector's stand-in answer.
  expect(res.headers.get("Content-Type")).toBe("application/json");
  expect((JSON.parse(text) as { errors: { code: string }[] }).errors[0]?.code).toBe("UNAVAILABLE");
}

interface Case {
  path: FaultPath<unknown>;
  k: number;
  kind: FaultKind;
}

async function runCase(path: FaultPath<unknown>, plan: FaultPlan): Promise<void> {
  const f = new FaultWorld();
  const c = await path.setup(f);
  const answer = await runUnder(path, f, c, plan);
  await storageConsistent(f.w.bucket);
  const faulted = plan.trace.find((t) => t.includes("<--")) ?? "";
  const shows = path.mayShow?.(faulted.replace(/^\d+ /, "")) ?? true;
  const ok = answer !== null && answer.status < 300;
  if (answer !== null && !ok) {
    expect(shows, `a fault of "${faulted}" must not show, but the answer was ${answer.status}`).toBe(true);
    await expectUnavailable(answer);
  }
  if (answer !== null && !shows) expect(answer.status).toBeLessThan(300);
  // A 2xx promised what `acked` reads; without one the client retries, and then it must hold.
  if (!ok) await path.retry(f, c);
  await path.acked(f, c);
  await path.finish?.(f, c);
  f.w.advance(LATER_MS);
  await f.w.collect(f.w.now());
  await (path.durable ?? path.acked)(f, c);
  await storageConsistent(f.w.bucket);
  await noOrphanData(f.w.bucket);
  noIntentNotes(f.w.bucket);
}

/** How many storage calls the path's operation makes when nothing fails. */
async function dryRun(path: FaultPath<unknown>): Promise<number> {
  const f = new FaultWorld();
  const c = await path.setup(f);
  const plan = new FaultPlan();
  const answer = await runUnder(path, f, c, plan);
  expect(answer?.status ?? 0, `${path.name} without faults`).toBeLessThan(300);
  expect(answer?.status ?? 0).toBeGreaterThanOrEqual(200);
  await path.acked(f, c);
  return plan.ops;
}

function shuffled<T>(items: T[], seed: number): T[] {
  const random = prng(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe("storage faults", { timeout: 280_000 }, () => {
  it("every write path, every storage call, every fault: invariants hold, 2xx means durable, a retry succeeds, a collection keeps what was acknowledged", async () => {
    console.log(`FAULT_SEED=${SEED}`);
    // The registry logs every storage failure it answers 503; thousands of them say nothing here.
    const quiet = vi.spyOn(console, "error").mockImplementation(() => undefined);
    onTestFinished(() => quiet.mockRestore());
    const started = Date.now();
    const cases: Case[] = [];
    const counts: string[] = [];
    for (const path of PATHS as FaultPath<unknown>[]) {
      const ops = await dryRun(path);
      counts.push(`${path.name}: ${ops}`);
      for (let k = 1; k <= ops; k++) for (const kind of FAULT_KINDS) cases.push({ path, k, kind });
    }
    const failures: string[] = [];
    for (const c of shuffled(cases, SEED)) {
      const plan = new FaultPlan(c.k, c.kind);
      try {
        await runCase(c.path, plan);
      } catch (e) {
        failures.push(
          `FAULT_SEED=${SEED} path "${c.path.name}", k=${c.k}, ${c.kind}: ${(e as Error).message}\n` +
            `storage trace:\n  ${plan.trace.join("\n  ")}`,
        );
      }
    }
    console.log(
      `fault matrix: ${PATHS.length} paths, ${cases.length} cases (paths x k x ${FAULT_KINDS.length} kinds), ` +
        `${failures.length} failed, ${Date.now() - started} ms; storage calls per path:\n  ${counts.join("\n  ")}`,
    );
    expect(failures.slice(0, 8).join("\n\n"), `${failures.length} of ${cases.length} cases failed`).toBe("");
  });
});
