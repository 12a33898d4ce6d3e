/**
 * The collector's lifecycle duties and its running modes: expired upload sessions and the pieces
 * they held, data objects nothing names, derived objects past their TTL, runs bounded
 * by an operation budget that resume from a saved cursor, the admin route and the cron handler.
 */
import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { sha256, type Digest } from "../../core/oci/digest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { collect } from "../../worker/gc/collector.ts";
import { DEFAULTS, type GcConfig } from "../../worker/config.ts";
import { gcRoute } from "../../worker/gc/route.ts";
import type { GcReport } from "../../worker/gc/report.ts";
import worker from "../../worker/index.ts";
import { keys } from "../../worker/storage/keys.ts";
import { createStore } from "../../worker/storage/store.ts";
import type { UploadSession } from "../../worker/storage/uploads.ts";
import { randomLayer } from "../helpers/images/builder.ts";
import { worker as registry } from "./helpers/registry.ts";
import {
  call,
  keysUnder,
  pullDigest,
  pushBlob,
  pushManifest,
  snapshotBucket,
  tdfsImageOf,
  tick,
  wipeBucket,
} from "./gc-registry.ts";

const NOW: GcConfig = {
  graceMs: 0,
  uploadTtlMs: DEFAULTS.uploadTtlSeconds * 1000,
  derivedTtlMs: DEFAULTS.gcDerivedTtlSeconds * 1000,
  maxOperations: 100_000,
};
const DAY = 24 * 3600 * 1000;
const MiB = 1024 * 1024;
const REPO = "life/uploads";

async function openSession(repo: string): Promise<string> {
  const r = await call(`/v2/${repo}/blobs/uploads/`, { method: "POST" });
  expect(r.status).toBe(202);
  return r.headers.get("Docker-Upload-UUID")!;
}

async function patch(repo: string, uuid: string, bytes: Uint8Array): Promise<void> {
  const r = await call(`/v2/${repo}/blobs/uploads/${uuid}`, { method: "PATCH", body: bytes });
  expect(r.status).toBe(202);
}

async function session(uuid: string): Promise<UploadSession> {
  return (await (await env.BLOBS.get(keys.upload(uuid)))!.json()) as UploadSession;
}

/** A blob sent through an upload session, so its bytes live in a piece under `data/`. */
async function chunkedBlob(repo: string): Promise<{ digest: Digest; size: number }> {
  const big = new Uint8Array(10 * MiB + 100);
  big.set(crypto.getRandomValues(new Uint8Array(32))); // each call its own blob
  const digest = await sha256(big);
  const uuid = await openSession(repo);
  await patch(repo, uuid, big);
  const r = await call(`/v2/${repo}/blobs/uploads/${uuid}?digest=${digest}`, { method: "PUT" });
  expect(r.status).toBe(201);
  return { digest, size: big.byteLength };
}

describe("upload sessions and data objects", () => {
  beforeEach(wipeBucket);

  it("removes expired sessions, then the pieces they held, and keeps live ones with theirs", async () => {
    const expired = await openSession(REPO);
    await patch(REPO, expired, new Uint8Array(1000));
    await patch(REPO, expired, new Uint8Array(2 * MiB + 500));
    const old = await session(expired);
    expect(old.pieces).toHaveLength(2);
    // Two days without a request: the session is past the 24 h upload TTL.
    const stale = { ...old, created: Date.now() - 2 * DAY, updated: Date.now() - 2 * DAY };
    await env.BLOBS.put(keys.upload(expired), JSON.stringify(stale));
    const live = await openSession(REPO);
    await patch(REPO, live, new Uint8Array(700));
    const livePieces = (await session(live)).pieces.map((p) => p.key);
    expect(await keysUnder(keys.piecesPrefix(expired))).toEqual(new Set(old.pieces.map((p) => p.key)));
    await tick();

    const report = await collect(env.BLOBS, NOW);

    expect(await keysUnder(keys.upload(expired))).toEqual(new Set());
    expect(await keysUnder(keys.piecesPrefix(expired))).toEqual(new Set());
    expect((await call(`/v2/${REPO}/blobs/uploads/${live}`)).status).toBe(204);
    expect(await keysUnder(keys.piecesPrefix(live))).toEqual(new Set(livePieces));
    expect(report.freed.uploads.objects).toBe(1); // the session state
    expect(report.freed.data).toEqual({ objects: 2, bytes: 2 * MiB + 1500 });
  });

  it("frees the data objects of an unreferenced chunked blob and of an orphan, and keeps the one an image uses", async () => {
    const used = await chunkedBlob(REPO);
    const unused = await chunkedBlob(REPO);
    const config = await randomLayer(200);
    await pushBlob(REPO, config);
    await pushManifest(REPO, "v1", {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: config.digest, size: config.bytes.byteLength },
      layers: [{ mediaType: MediaType.OciLayerGzip, digest: used.digest, size: used.size }],
    });
    // A data object that never became a blob (the Worker died before committing it).
    const orphan = keys.data(crypto.randomUUID());
    await env.BLOBS.put(orphan, new Uint8Array(4096));
    const usedLoc = (await env.BLOBS.head(keys.blob(used.digest)))!.customMetadata!.loc!;
    const unusedLoc = (await env.BLOBS.head(keys.blob(unused.digest)))!.customMetadata!.loc!;
    expect(usedLoc.startsWith(keys.dataPrefix)).toBe(true);
    await tick();

    const dry = await collect(env.BLOBS, NOW, { dryRun: true });
    const report = await collect(env.BLOBS, NOW);

    const configLoc = (await env.BLOBS.head(keys.blob(config.digest)))!.customMetadata!.loc!;
    expect(await keysUnder(keys.dataPrefix)).toEqual(new Set([usedLoc, configLoc]));
    expect(await env.BLOBS.head(keys.blob(unused.digest))).toBeNull();
    expect(await pullDigest(REPO, used.digest)).toBe(used.digest);
    expect(report.freed.data).toEqual({ objects: 2, bytes: unused.size + 4096 });
    expect(report.freed.blobs.objects).toBe(1);
    expect(dry.freed).toEqual(report.freed);
    expect(unusedLoc).not.toBe(usedLoc);
  });
});

describe("derived objects", () => {
  beforeEach(wipeBucket);

  it("are collected when neither written nor read within the derived TTL", async () => {
    const later = Date.now() + 8 * DAY;
    const d1: Digest = await sha256("partition one");
    const d2: Digest = await sha256("partition two");
    await env.BLOBS.put(keys.derivedManifest("life/models", d1), "{}");
    await env.BLOBS.put(keys.derivedManifest("life/models", d2), "{}", {
      customMetadata: { lastAccess: String(later - 3600_000) },
    });
    await env.BLOBS.put(keys.derivedBlob("life/models", d1), "{}");
    const report = await collect(env.BLOBS, NOW, { now: later });
    expect(await keysUnder(keys.derivedPrefix)).toEqual(new Set([keys.derivedManifest("life/models", d2)]));
    expect(report.freed.derived).toEqual({ objects: 2, bytes: 4 });
  });

  it("are stamped and refreshed by the store's clock, the time the collector judges them by", async () => {
    // A clock far from the wall clock: lastAccess taken from Date.now() would make a partition
    // written "now" by this clock look years old, or from the future, to a collection at its time.
    let now = Date.UTC(2030, 0, 1);
    const store = createStore({ bucket: env.BLOBS, clock: { now: () => now, sleep: async () => undefined } });
    const bytes = new TextEncoder().encode("{}");
    const content = { bytes, digest: await sha256(bytes), size: bytes.byteLength };
    const key = keys.derivedBlob("life/models", content.digest);
    const lastAccess = async (): Promise<string | undefined> => (await env.BLOBS.head(key))?.customMetadata?.lastAccess;

    await store.derived.putBlob("life/models", content);
    expect(await lastAccess()).toBe(String(now));
    now += 2 * DAY;
    expect(await store.derived.statBlob("life/models", content.digest)).not.toBeNull();
    expect(await lastAccess()).toBe(String(now));
    const report = await collect(env.BLOBS, NOW, { now: now + NOW.derivedTtlMs - DAY });
    expect(report.freed.derived).toEqual({ objects: 0, bytes: 0 });
    expect(await keysUnder(keys.derivedPrefix)).toEqual(new Set([key]));
  });
});

describe("bounded runs", () => {
  beforeEach(wipeBucket);

  it("a collection larger than the operation budget resumes from its cursor and ends as one run would", async () => {
    const kept: Digest[] = [];
    const freed: Digest[] = [];
    for (const repo of ["life/a", "life/b", "life/c"]) {
      const tagged = await tdfsImageOf([await randomLayer()], [await randomLayer()]).pushTo(registry, repo, "keep");
      const dropped = await tdfsImageOf([await randomLayer()], [await randomLayer()]).pushTo(registry, repo);
      kept.push(...tagged.blobs.map((b) => b.digest));
      freed.push(...dropped.blobs.map((b) => b.digest));
    }
    await tick();
    const small = { ...NOW, maxOperations: 12 };
    const reports: GcReport[] = [];
    const phases: string[] = [];
    for (let i = 0; i < 50; i++) {
      const r = await collect(env.BLOBS, small);
      reports.push(r);
      if (r.complete) break;
      const state = (await (await env.BLOBS.get(keys.gcState))!.json()) as { phase: string; runId: string };
      expect(state.runId).toBe(reports[0]!.runId);
      phases.push(state.phase);
    }
    const last = reports.at(-1)!;
    expect(last.complete).toBe(true);
    expect(reports.length).toBeGreaterThan(3);
    // It stopped inside the repository phase and inside the global phases.
    expect(phases).toContain("repositories");
    expect(phases.some((p) => p !== "repositories")).toBe(true);
    expect(reports.every((r) => r.runId === last.runId)).toBe(true);
    expect(last.repositories).toBe(3);
    expect(last.freed.blobs.objects).toBe(freed.length);
    expect(await env.BLOBS.head(keys.gcState)).toBeNull();
    const blobs = await keysUnder(keys.blobsPrefix);
    expect([...blobs].sort()).toEqual(kept.map((d) => keys.blob(d)).sort());
  });
});

describe("entry points", () => {
  beforeEach(wipeBucket);

  it("POST /admin/gc?dryRun=1 answers the report and changes nothing", async () => {
    await tdfsImageOf([await randomLayer(1000)], [await randomLayer(500)]).pushTo(registry, "life/route");
    await tick();
    const before = await snapshotBucket();
    const r = await gcRoute.request(
      "/admin/gc?dryRun=1",
      { method: "POST" },
      { ...env, GC_GRACE_SECONDS: "0", EDGE_TTL_SECONDS: "0" },
    );
    expect(r.status).toBe(200);
    const report = (await r.json()) as GcReport;
    expect(report.dryRun).toBe(true);
    expect(report.complete).toBe(true);
    expect(report.freed.blobs.objects).toBe(4); // config, base layer, field, allotment
    expect(report.freed.manifests.objects).toBe(1);
    expect(await snapshotBucket()).toEqual(before);
  });

  it("the cron handler collects with the configured grace period, which protects a fresh push", async () => {
    const img = await tdfsImageOf([await randomLayer()], [await randomLayer()]).pushTo(registry, "life/cron");
    await tick();
    await worker.scheduled(createScheduledController(), env);
    const report = (await (await env.BLOBS.get(keys.gcLastReport))!.json()) as GcReport;
    expect(report.complete).toBe(true);
    expect(report.total).toEqual({ objects: 0, bytes: 0 });
    for (const b of img.blobs) expect(await pullDigest("life/cron", b.digest)).toBe(b.digest);
  });
});
