/**
 * Pulls and polls answered at the edge (worker/storage/edge-memo.ts, edge-reads.ts), in workerd
 * with its Cache API: the R2 and KV calls of every request are read from `Server-Timing`
 * (DEBUG_TIMING=1), so the tests count what a warm pull costs, not only what it returns.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { Digest } from "../../core/oci/digest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { createApp } from "../../worker/app.ts";
import { readConfig } from "../../worker/config.ts";
import type { Bucket } from "../../worker/storage/bucket.ts";
import { countingBucket, countingKv } from "../../worker/storage/counting.ts";
import { keys } from "../../worker/storage/keys.ts";
import { createStore } from "../../worker/storage/store.ts";
import { basic, usersWithPasswords, workerWith, type Call } from "./auth-support.ts";
import { ORIGIN } from "./helpers/registry.ts";
import { anImage } from "../helpers/images/builder.ts";
import type { BuiltImage } from "../helpers/images/types.ts";
import { worker } from "./helpers/registry.ts";

const ACCEPT = [MediaType.OciIndex, MediaType.OciManifest].join(", ");
/** A 2x2 field over two base layers, one allotment a plain tar. */
function pushImage(repo: string, tag = "v1"): Promise<BuiltImage> {
  return anImage().randomLayers(2, 4096).grid(2, 2).allotment(1, 1, { compression: "none" }).pushTo(worker, repo, tag);
}
// Long enough to outlast the cache fill, which takes the test runtime up to 30 s per blob.
const EDGE = { DEBUG_TIMING: "1", TAG_TTL_SECONDS: "300", EDGE_TTL_SECONDS: "300" };

interface Counted {
  status: number;
  r2: number;
  kv: number;
  body: ArrayBuffer;
  headers: Headers;
}

async function counted(call: Call, path: string, init?: RequestInit): Promise<Counted> {
  const res = await call(path, { ...init, headers: { Accept: ACCEPT, ...init?.headers } });
  const timing = res.headers.get("server-timing") ?? "";
  const count = (what: string): number => Number(new RegExp(`${what};count=(\\d+)`).exec(timing)?.[1] ?? NaN);
  return { status: res.status, r2: count("r2"), kv: count("kv"), body: await res.arrayBuffer(), headers: res.headers };
}

/** What containerd fetches for a partition: the top by tag, the platform manifest, config and layers. */
async function pullPartition(call: Call, repo: string, tag: string): Promise<Counted[]> {
  const top = await counted(call, `/v2/${repo}/manifests/${tag}`);
  expect(top.status).toBe(200);
  const index = JSON.parse(new TextDecoder().decode(top.body)) as { manifests: { digest: string }[] };
  const child = await counted(call, `/v2/${repo}/manifests/${index.manifests[0]!.digest}`);
  expect(child.status).toBe(200);
  const manifest = JSON.parse(new TextDecoder().decode(child.body)) as {
    config: { digest: string };
    layers: { digest: string }[];
  };
  const blobs = await Promise.all(
    [manifest.config, ...manifest.layers].map((d) => counted(call, `/v2/${repo}/blobs/${d.digest}`)),
  );
  for (const b of blobs) expect(b.status).toBe(200);
  return [top, child, ...blobs];
}

const total = (rs: Counted[], what: "r2" | "kv"): number => rs.reduce((n, r) => n + r[what], 0);

describe("warm pulls and polls at the edge", () => {
  let img: BuiltImage;
  let edge: Call;
  beforeAll(async () => {
    img = await pushImage("edge/model");
    edge = workerWith(EDGE);
  });

  it("a warm pull of a partition makes no R2 or KV call; the cold and the filling pulls make some", async () => {
    const cold = await pullPartition(edge, "edge/model", "v1--0.0.1.0");
    const filling = await pullPartition(edge, "edge/model", "v1--0.0.1.0");
    const warm = await pullPartition(edge, "edge/model", "v1--0.0.1.0");
    expect(total(cold, "r2")).toBeGreaterThan(0);
    expect(total(filling, "r2")).toBeGreaterThan(0); // the layers' bytes, read once more to fill the cache
    expect(warm.map((r) => [r.r2, r.kv])).toEqual(warm.map(() => [0, 0]));
    // Byte for byte the same answers.
    for (let i = 0; i < warm.length; i++) expect(new Uint8Array(warm[i]!.body)).toEqual(new Uint8Array(cold[i]!.body));
  });

  it("1,000 HEAD polls of a semantic tag make at most 2 R2 calls", async () => {
    // The partition was computed before, at another location: KV has its answer.
    expect((await counted(edge, "http://elsewhere.test/v2/edge/model/manifests/v1--0.1.1.1")).status).toBe(200);
    let r2 = 0;
    for (let i = 0; i < 1000; i++) {
      const r = await counted(edge, "/v2/edge/model/manifests/v1--0.1.1.1", { method: "HEAD" });
      expect(r.status).toBe(200);
      r2 += r.r2;
    }
    expect(r2).toBeLessThanOrEqual(2);
  });

  it("a DELETE of a blob, or of a manifest, is seen at once where it was made", async () => {
    const repo = "edge/deleted";
    const pushed = await pushImage(repo);
    const layer = pushed.platforms[0]!.layers[0]!.digest;
    expect((await counted(edge, `/v2/${repo}/blobs/${layer}`)).status).toBe(200);
    expect((await counted(edge, `/v2/${repo}/blobs/${layer}`)).r2).toBe(1); // the bytes; the link is remembered
    expect((await edge(`/v2/${repo}/blobs/${layer}`, { method: "DELETE" })).status).toBe(202);
    expect((await counted(edge, `/v2/${repo}/blobs/${layer}`)).status).toBe(404);

    const manifest = pushed.platforms[0]!.manifest.digest;
    expect((await counted(edge, `/v2/${repo}/manifests/${manifest}`)).status).toBe(200);
    expect((await counted(edge, `/v2/${repo}/manifests/${manifest}`)).r2).toBe(0);
    expect((await edge(`/v2/${repo}/manifests/${manifest}`, { method: "DELETE" })).status).toBe(202);
    expect((await counted(edge, `/v2/${repo}/manifests/${manifest}`)).status).toBe(404);
  });

  it("a tag re-pointed is seen at once with TAG_TTL_SECONDS=0, and, written elsewhere, within the window otherwise", async () => {
    const repo = "edge/retag";
    const a = await pushImage(repo, "v1");
    const b = await pushImage(repo, "v2");
    const digestOf = async (call: Call): Promise<string | null> =>
      (await counted(call, `/v2/${repo}/manifests/v1`, { method: "HEAD" })).headers.get("docker-content-digest");

    const fresh = workerWith({ DEBUG_TIMING: "1" });
    expect(await digestOf(fresh)).toBe(a.digest);
    await repoint(repo, "v1", b.digest as Digest);
    expect(await digestOf(fresh)).toBe(b.digest);

    const short = workerWith({ DEBUG_TIMING: "1", TAG_TTL_SECONDS: "2", EDGE_TTL_SECONDS: "2" });
    expect(await digestOf(short)).toBe(b.digest);
    // Another location moves the tag: this one answers from what it read, for the window at most.
    await repoint(repo, "v1", a.digest as Digest);
    expect(await digestOf(short)).toBe(b.digest);
    await new Promise((r) => setTimeout(r, 2500));
    expect(await digestOf(short)).toBe(a.digest);
    // Moved here, by a push: seen at once.
    const put = await short(`/v2/${repo}/manifests/v1`, {
      method: "PUT",
      headers: { "Content-Type": b.mediaType },
      body: b.bytes,
    });
    expect(put.status).toBe(201);
    expect(await digestOf(short)).toBe(b.digest);
  });

  it("after a collection elsewhere, a remembered link is not served past the window", async () => {
    const repo = "edge/collected";
    const pushed = await pushImage(repo);
    const layer = pushed.platforms[0]!.layers[1]!.digest as Digest;
    const short = workerWith({ DEBUG_TIMING: "1", EDGE_TTL_SECONDS: "2", CACHE_MAX_BLOB_BYTES: "0" });
    expect((await counted(short, `/v2/${repo}/blobs/${layer}`)).status).toBe(200);
    // What a collection at another location does: the link and the bytes go.
    const link = await env.BLOBS.head(keys.blobLink(repo, layer));
    await env.BLOBS.delete([keys.blobLink(repo, layer), link!.customMetadata!.loc!, keys.blob(layer)]);
    // Within the window the remembered link names bytes that are gone: the answer is still a 404.
    expect((await counted(short, `/v2/${repo}/blobs/${layer}`)).status).toBe(404);
    await new Promise((r) => setTimeout(r, 2500));
    const after = await counted(short, `/v2/${repo}/blobs/${layer}`);
    expect(after.status).toBe(404);
    expect(after.r2).toBeGreaterThan(0); // asked the bucket: nothing is remembered any more
  });

  it("keeps the collector's grace period at least as long as the window", () => {
    expect(readConfig({ GC_GRACE_SECONDS: "0", EDGE_TTL_SECONDS: "60" }).gc.graceMs).toBe(60_000);
    expect(readConfig({ GC_GRACE_SECONDS: "3600", EDGE_TTL_SECONDS: "60" }).gc.graceMs).toBe(3_600_000);
    expect(readConfig({ TAG_TTL_SECONDS: "600", EDGE_TTL_SECONDS: "60" }).tagTtlSeconds).toBe(60);
  });

  it("answers ranged and conditional GETs of a remembered blob correctly", async () => {
    const layer = img.platforms[0]!.layers[0]!;
    for (let i = 0; i < 3; i++) await counted(edge, `/v2/edge/model/blobs/${layer.digest}`);
    const ranged = await counted(edge, `/v2/edge/model/blobs/${layer.digest}`, { headers: { Range: "bytes=10-19" } });
    expect(ranged.status).toBe(206);
    expect(new Uint8Array(ranged.body)).toEqual(layer.bytes.slice(10, 20));
    expect(ranged.headers.get("content-range")).toBe(`bytes 10-19/${layer.size}`);
    const conditional = await counted(edge, `/v2/edge/model/blobs/${layer.digest}`, {
      headers: { "If-None-Match": `"${layer.digest}"` },
    });
    expect(conditional.status).toBe(304);
  });

  it("serves a warm pull while every bucket call fails, and answers what is not warm 503 UNAVAILABLE", async () => {
    let failing = false;
    const faulty = (bucket: Bucket): Bucket =>
      new Proxy(bucket, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver) as unknown;
          if (typeof value !== "function") return value;
          return (...args: unknown[]) => {
            if (failing) return Promise.reject(new Error("We encountered an internal error. Please try again."));
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
    const app = createApp({
      storeFor: (bindings, parts) =>
        createStore({
          bucket: countingBucket(faulty(bindings.BLOBS), parts.counts),
          kv: countingKv(bindings.CACHE, parts.counts),
          vars: bindings,
          origin: parts.origin,
          later: parts.later,
        }),
    });
    const call: Call = async (path, init) => {
      const ctx = createExecutionContext();
      const res = await app.fetch(new Request(new URL(path, ORIGIN), init), { ...env, ...EDGE }, ctx);
      await waitOnExecutionContext(ctx);
      return res;
    };
    for (let i = 0; i < 3; i++) await pullPartition(call, "edge/model", "v1--1.0.1.1");
    failing = true;
    const warm = await pullPartition(call, "edge/model", "v1--1.0.1.1");
    expect(warm.every((r) => r.status === 200)).toBe(true);
    const cold = await call("/v2/edge/model/manifests/v1--0.0.0.0", { headers: { Accept: ACCEPT } });
    expect(cold.status).toBe(503);
    expect(((await cold.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe("UNAVAILABLE");
  });

  it("checks auth on every request: what a location remembers of a private repository reaches no one who may not pull it", async () => {
    const users = await usersWithPasswords({ alice: "alice-pw", bob: "bob-pw" });
    const secured = workerWith({
      ...EDGE,
      AUTH_MODE: "token",
      AUTH_CONFIG: JSON.stringify({ users, rules: [{ repos: "edge/model", pull: ["alice"] }] }),
    });
    const alice = { Authorization: basic("alice", "alice-pw") };
    for (let i = 0; i < 3; i++) {
      expect((await counted(secured, "/v2/edge/model/manifests/v1--0.0.1.0", { headers: alice })).status).toBe(200);
    }
    for (const headers of [{}, { Authorization: basic("bob", "bob-pw") }] as Record<string, string>[]) {
      const r = await counted(secured, "/v2/edge/model/manifests/v1--0.0.1.0", { headers });
      expect([401, 403]).toContain(r.status);
      expect(new TextDecoder().decode(r.body)).toMatch(/"errors"/);
      const layer = img.platforms[0]!.layers[0]!.digest;
      expect([401, 403]).toContain((await counted(secured, `/v2/edge/model/blobs/${layer}`, { headers })).status);
    }
  });
});

/** A tag written straight into the bucket, as a push at another location would leave it. */
async function repoint(repo: string, tag: string, digest: Digest): Promise<void> {
  await env.BLOBS.put(keys.tag(repo, tag), digest, { customMetadata: { digest } });
}
