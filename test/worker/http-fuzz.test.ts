/**
 * HTTP fuzz: thousands of seeded random requests against the real Worker, its R2 bucket and KV
 * namespace: every method, valid and hostile names, digests, tags and semantic tags, every route,
 * odd headers and manifest bodies (wrong types, huge numbers, 100,000 levels of nesting, duplicate
 * keys, invalid UTF-8, 6 MiB). Every answer must be 2xx-4xx, a HEAD has no body, and a 4xx on /v2/
 * is OCI error JSON with a code of the registry's table (helpers/http-fuzz.ts answerProblems).
 *
 * Two repositories are pushed first (an image, its tags, an index, a referrer, a 2DFS image whose
 * semantic tags resolve, open upload sessions) and snapshotted, key by key and answer by answer.
 * The fuzzer writes to them only what must be refused, so after the run they must be exactly as
 * they were; valid writes go to repositories of their own.
 *
 *   HTTP_FUZZ_SEED=123 HTTP_FUZZ_RUNS=20000 npx vitest run --config vitest.worker.config.mts test/worker/http-fuzz.test.ts
 *
 * A failure prints the seed and the shrunk request. Keep what it finds, once fixed, as a named test
 * in test/worker/http-fuzz-regressions.test.ts, checked with answerProblems like the run itself.
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { sha256 } from "../../core/oci/digest.ts";
import type { Descriptor } from "../../core/oci/manifest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { keys } from "../../worker/storage/keys.ts";
import { anImage, anIndex } from "../helpers/images/builder.ts";
import type { BuiltImage, BuiltManifest } from "../helpers/images/types.ts";
import { basic, bearer, fetchToken, signHs256, usersWithPasswords, workerWith } from "./auth-support.ts";
import { snapshotBucket } from "./gc-registry.ts";
import { utf8 } from "./helpers/bytes.ts";
import {
  answerProblems,
  FUZZ_ADMIN,
  FUZZ_ADMIN_PASSWORD,
  learn,
  mayWrite,
  requests,
  send,
  watchUnhandled,
  type Call,
  type FuzzRequest,
  type FuzzWorld,
  type RepoFacts,
} from "./helpers/http-fuzz.ts";
import { call, expectStatus, registry, worker } from "./helpers/registry.ts";

/** An integer setting from the environment of `vitest` (vitest.worker.config.mts), or its default. */
function setting(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, not "${value}"`);
  return n;
}

const SEED = setting("HTTP_FUZZ_SEED", env.HTTP_FUZZ_SEED, 19);
/** About 30 s of requests; HTTP_FUZZ_RUNS asks for more or fewer. */
const RUNS = setting("HTTP_FUZZ_RUNS", env.HTTP_FUZZ_RUNS, 5000);
/** The auth phase is slower per request (password checks, tokens) and needs fewer to cover its paths. */
const AUTH_RUNS = Math.max(1, Math.round(RUNS / 6));

const PRE_APP = "fuzz-pre/app";
const PRE_MODEL = "fuzz-pre/model";
const W_APP = "fuzz-w/app";
const W_MODEL = "fuzz-w/model";
const ACCEPT_ALL = [MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, MediaType.DockerManifestList];

const descriptorsOf = (m: BuiltManifest): Descriptor[] => m.blobs.map((b) => b.descriptor);
const layersOf = (m: BuiltManifest): Descriptor[] => (m.json.layers as Descriptor[]).map((l) => ({ ...l }));

/** Upload sessions: one empty, one with a chunk in it. */
async function openSessions(repo: string): Promise<string[]> {
  const empty = await registry.openUpload(repo);
  const started = await registry.openUpload(repo);
  await expectStatus(await call(started.location, { method: "PATCH", body: utf8("a first chunk") }), 202);
  return [empty.uuid, started.uuid];
}

/** An image tagged v1 and latest, an index tagged multi, and a signature of the image. */
async function pushApp(repo: string): Promise<RepoFacts> {
  const img = await anImage().randomLayers(2, 1024).pushTo(worker, repo, "v1");
  await registry.pushManifest(repo, "latest", img.bytes, img.mediaType);
  const arm = await anImage().platforms(["linux/arm64"]).randomLayers(1, 512).build();
  const index = await anIndex().of(img, arm).pushTo(worker, repo, "multi");
  const sig = await anImage()
    .artifactType("application/vnd.example.signature")
    .subject(img.descriptor)
    .pushTo(worker, repo);
  return {
    name: repo,
    tags: ["v1", "latest", "multi"],
    semantic: [],
    manifests: [img.descriptor, arm.descriptor, index.descriptor, sig.descriptor],
    config: img.platforms[0]!.config.descriptor,
    layers: layersOf(img),
    blobs: [...descriptorsOf(img), ...descriptorsOf(arm.platforms[0]!.manifest), ...descriptorsOf(sig)],
    uploads: await openSessions(repo),
    junkFields: [],
  };
}

/** A 2DFS image over a 2x2 field with a named partition, tagged v1. */
async function pushModel(repo: string, junk: boolean): Promise<RepoFacts> {
  const img: BuiltImage = await anImage()
    .randomLayers(1, 1024)
    .grid(2, 2)
    .hole(1, 0)
    .partition("half", "0.0.0.1")
    .pushTo(worker, repo, "v1");
  const p = img.platforms[0]!;
  // Blobs that a manifest may name as its field but that are none: bytes, `{}`, a field whose
  // cells name malformed digests, one at coordinates out of any range.
  const junkFields: Descriptor[] = [];
  if (junk) {
    const texts = [
      "not json at all",
      "{}",
      '{"rows":[{"allotments":[{"row":0,"col":0,"digest":"zz","diffid":""}],"allotments_size":1}],"rows_size":1,"owner":""}',
      `{"rows":[{"allotments":[{"row":99999999999,"col":-1,"digest":"${"a".repeat(64)}","diffid":"${"b".repeat(64)}"}],"allotments_size":1}],"rows_size":1,"owner":""}`,
    ];
    for (const t of texts) {
      const bytes = utf8(t);
      const digest = await registry.pushBlob(repo, bytes);
      junkFields.push({ mediaType: MediaType.TdfsField, digest, size: bytes.byteLength });
    }
  }
  return {
    name: repo,
    tags: ["v1"],
    semantic: ["v1--0.0.1.1", "v1--half", "v1--all", "v1--0.1.0.1"],
    manifests: [img.descriptor, p.manifest.descriptor],
    config: p.config.descriptor,
    layers: layersOf(p.manifest),
    blobs: [...descriptorsOf(p.manifest), ...junkFields],
    uploads: await openSessions(repo),
    junkFields,
  };
}

/** What a pre-pushed repository answers: every manifest, tag, semantic tag and blob, its tags and referrers. */
async function answersOf(repos: readonly RepoFacts[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const record = async (path: string, headers: Record<string, string> = {}) => {
    const res = await call(path, { headers });
    const body = new Uint8Array(await res.arrayBuffer());
    const digest = res.headers.get("Docker-Content-Digest");
    out.set(path, `${res.status} ${res.headers.get("Content-Type")} ${digest} ${await sha256(body)}`);
  };
  for (const r of repos) {
    const refs = [...r.tags, ...r.semantic, ...r.manifests.map((m) => m.digest)];
    for (const ref of refs) await record(`/v2/${r.name}/manifests/${ref}`, { Accept: ACCEPT_ALL.join(", ") });
    for (const b of r.blobs) await record(`/v2/${r.name}/blobs/${b.digest}`);
    await record(`/v2/${r.name}/tags/list`);
    for (const m of r.manifests) await record(`/v2/${r.name}/referrers/${m.digest}`);
    for (const u of r.uploads) await record(`/v2/${r.name}/blobs/uploads/${u}`);
  }
  return out;
}

/** The keys that valid writes of the run may change: the writable repositories' and their sessions'. */
function writableKey(world: FuzzWorld, key: string): boolean {
  return world.writable.some(
    (w) =>
      key.startsWith(keys.repoPrefix(w.name)) ||
      key === keys.catalog(w.name) ||
      w.uploads.some((u) => key === keys.upload(u) || key.startsWith(keys.piecesPrefix(u))),
  );
}

/** The pre-pushed repositories' own keys and sessions, checked after every request that may write. */
async function preState(world: FuzzWorld): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const r of world.pre) {
    for (const [k, v] of await snapshotBucket(keys.repoPrefix(r.name))) out.set(k, v);
    for (const u of r.uploads) for (const [k, v] of await snapshotBucket(keys.upload(u))) out.set(k, v);
  }
  return out;
}

function diff(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of before) if (after.get(k) !== v) out.push(`${k}: ${v} -> ${after.get(k) ?? "gone"}`);
  return out;
}

interface RunResult {
  histogram: Map<string, number>;
  sent: number;
  ms: number;
}

/**
 * Runs the fuzzer through `via`; fails on the first answer with a problem or the first change to
 * the pre-pushed repositories, with the seed and the shrunk request.
 */
async function fuzz(world: FuzzWorld, via: Call, runs: number, extraAuth: readonly string[] = []): Promise<RunResult> {
  const histogram = new Map<string, number>();
  const count = (k: string) => histogram.set(k, (histogram.get(k) ?? 0) + 1);
  const pre = await preState(world);
  let sent = 0;
  let broken: FuzzRequest | undefined;
  const started = Date.now();
  const unhandled = watchUnhandled();
  const property = fc.asyncProperty(requests(world, extraAuth), async (req) => {
    // Once the pre-pushed state is broken every later request looks guilty: report the first.
    if (broken) throw new Error(`pre-pushed state changed by ${JSON.stringify(broken).slice(0, 2000)}`);
    const res = await send(req, via);
    sent++;
    if (res === "unsendable") {
      count("unsendable");
      return;
    }
    count(String(res.status));
    learn(world, req, res);
    const problems = await answerProblems(req, res);
    problems.push(...(await unhandled.take()).map((r) => `left an unhandled rejection: ${r}`));
    if (mayWrite(req.method)) {
      const after = await preState(world);
      const changed = diff(pre, after);
      const added = [...after.keys()].filter((k) => !pre.has(k) && !k.startsWith(keys.derivedPrefix));
      if (changed.length || added.length) {
        broken = req;
        problems.push(...changed.map((c) => `changed ${c}`), ...added.map((k) => `added ${k}`));
      }
    }
    expect(problems, `${req.method} ${req.path.slice(0, 300)} answered ${res.status}`).toEqual([]);
  });
  try {
    await fc.assert(property, { seed: SEED, numRuns: runs });
  } catch (e) {
    console.log(`HTTP fuzz failed with seed ${SEED} (HTTP_FUZZ_SEED=${SEED} replays it)`);
    throw e;
  } finally {
    unhandled.stop();
  }
  return { histogram, sent, ms: Date.now() - started };
}

function report(what: string, r: RunResult): void {
  const rows = [...r.histogram].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}: ${v}`);
  console.log(
    `HTTP fuzz ${what}: seed ${SEED}, ${r.sent} requests in ${(r.ms / 1000).toFixed(1)} s; ${rows.join(", ")}`,
  );
}

function expectNo5xx(r: RunResult): void {
  const fives = [...r.histogram].filter(([k]) => /^5/.test(k));
  expect(fives).toEqual([]);
  expect(r.sent).toBeGreaterThanOrEqual(1);
}

describe("HTTP fuzz", () => {
  let world: FuzzWorld;
  let keysBefore: Map<string, string>;
  let answersBefore: Map<string, string>;

  beforeAll(async () => {
    const pre = [await pushApp(PRE_APP), await pushModel(PRE_MODEL, false)];
    const writable = [await pushApp(W_APP), await pushModel(W_MODEL, true)];
    world = { pre, writable };
    // Answers first: a semantic tag's first pull stores its derived objects, which belong to the state.
    answersBefore = await answersOf(pre);
    keysBefore = await snapshotBucket();
  }, 120_000);

  it(`answers ${RUNS} random requests with no 5xx, OCI errors on /v2/, and the pre-pushed state intact`, async () => {
    const result = await fuzz(world, call, RUNS);
    report("(AUTH_MODE=none)", result);
    expectNo5xx(result);

    const keysAfter = await snapshotBucket();
    const lost = diff(new Map([...keysBefore].filter(([k]) => !writableKey(world, k))), keysAfter);
    expect(lost, "pre-run keys changed or gone").toEqual([]);
    expect(diff(answersBefore, await answersOf(world.pre)), "pre-run answers changed").toEqual([]);
  }, 600_000);

  it(`answers ${AUTH_RUNS} random requests with token auth on: bad, anonymous and admin credentials`, async () => {
    const secured = workerWith({
      AUTH_MODE: "token",
      AUTH_CONFIG: JSON.stringify({
        users: await usersWithPasswords({ [FUZZ_ADMIN]: FUZZ_ADMIN_PASSWORD, "fuzz-reader": "reader-pw" }),
        admins: [FUZZ_ADMIN],
        rules: [
          { repos: "fuzz-pre/**", anonymousPull: true },
          { repos: "fuzz-w/**", pull: ["fuzz-reader"] },
        ],
      }),
    });
    const admin = basic(FUZZ_ADMIN, FUZZ_ADMIN_PASSWORD);
    // Mostly the admin's token: tokens are not rate limited, so the wrong passwords drawn do not
    // lock the fuzzer out of the routes behind the gate.
    const scopes = [...world.pre, ...world.writable].map((r) => `repository:${r.name}:*`);
    const token = (await fetchToken(secured, [...scopes, "registry:catalog:*"], admin)).token;
    const forged = await signHs256({ sub: FUZZ_ADMIN, access: [] }, "not-the-key");
    const result = await fuzz(world, secured, AUTH_RUNS, [
      bearer(token),
      admin,
      basic("fuzz-reader", "reader-pw"),
      bearer(forged),
    ]);
    report("(AUTH_MODE=token)", result);
    expectNo5xx(result);
    expect(diff(answersBefore, await answersOf(world.pre)), "pre-run answers changed").toEqual([]);
  }, 600_000);
});
