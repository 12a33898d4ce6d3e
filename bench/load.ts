/**
 * Load and fault bench (docs/benchmarks.md), against the registry as users run it (`npm start`, local R2
 * and KV) on this machine, over loopback only:
 *
 *   node bench/load.ts          (or `npm run bench -- load`)
 *
 * 1. Mixed load. 64 clients pull one 2DFS partition over and over while 8 clients push images
 *    that share layers (half as monolithic POSTs, half as streamed sessions), all at once. Prints
 *    the errors (must be 0) and p50/p99 per request kind, then pulls every pushed image back and
 *    checks every byte.
 * 2. Fan-in. One blob stored by 16 repositories at once: 8 monolithic POSTs racing 8 closing PUTs
 *    of sessions already streamed, each repository then tagging an image of it. After a
 *    collection with no grace period, 16 of 16 must still pull.
 * 3. Crash. The registry (`npm start`, workerd included) is killed with SIGKILL while a Content-Range PATCH is half sent, then
 *    started again on the same persistence dir. The client asks the session for its Range,
 *    resumes from there, and the blob must be intact; every image that pulled intact just before
 *    the crash must still pull intact.
 *
 * Every phase is bounded in requests, and the whole run in time. Exits 1 if any check fails.
 * Environment: LOAD_PULLERS (64), LOAD_PULLS (pulls per puller, 3), LOAD_PUSHERS (8),
 * LOAD_PUSH_ROUNDS (images per pusher, 2), LOAD_FANOUT (16), LOAD_TIME_LIMIT_S (600).
 */
import { request } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { anImage } from "../test/helpers/images/builder.ts";
import { writeImage } from "../test/helpers/images/layout.ts";
import { overHttp, push } from "../test/helpers/images/push.ts";
import { sleep } from "../test/helpers/process.ts";
import {
  closeUpload,
  collectGarbage,
  MiB,
  patchRange,
  patchStreamed,
  postWhole,
  pullImage,
  pushImage,
  randomBlob,
  readBlob,
  readProblem,
  said,
  startUpload,
  uploadStatus,
  type BlobBytes,
  type PullResult,
  type Step,
} from "../test/helpers/registry-http.ts";
import { startRegistry, type Registry } from "../test/helpers/wrangler-dev.ts";

function envInt(name: string, fallback: number): number {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  return n;
}

const PULLERS = envInt("LOAD_PULLERS", 64);
const PULLS_PER_PULLER = envInt("LOAD_PULLS", 3);
const PUSHERS = envInt("LOAD_PUSHERS", 8);
const PUSH_ROUNDS = envInt("LOAD_PUSH_ROUNDS", 2);
const FANOUT = envInt("LOAD_FANOUT", 16);
const TIME_LIMIT_MS = envInt("LOAD_TIME_LIMIT_S", 600) * 1000;

/** The GC must be reachable (admin endpoint, open mode) and must not wait an hour. */
// EDGE_TTL_SECONDS 0: the collections here take at once what nothing reaches (a grace of 0 is never shorter than the edge window).
const VARS = { AUTH_MODE: "none", GC_GRACE_SECONDS: "0", EDGE_TTL_SECONDS: "0" };
/** Over one 10 MiB part: a streamed PATCH of it goes to its own data object, as in the races. */
const BIG_LAYER = 12 * MiB;
const PARTITION_REPO = "load/model";
/** Row 0 of a 2x4 field: base layers plus four allotments. */
const PARTITION_REF = "v1--0.0.0.3";
/** Between the closing PUTs of the fan-in, so that they land all through the POSTs' uploads. */
const CLOSE_STAGGER_MS = 60;
const CRASH_BLOB = 40 * MiB;
const CRASH_CHUNK = 8 * MiB;
/** Chunks acknowledged before the one that the crash cuts in half. */
const CRASH_AFTER_CHUNKS = 3;

// ---------------------------------------------------------------------------------------------
// Figures and checks

interface Check {
  what: string;
  ok: boolean;
  detail: string;
}
const checks: Check[] = [];

function check(what: string, ok: boolean, detail: string): void {
  checks.push({ what, ok, detail });
  console.log(`${ok ? "ok  " : "FAIL"}  ${what}: ${detail}`);
}

/** Latency per request kind, and every answer that was not the expected one. */
class Recorder {
  readonly #ms = new Map<string, number[]>();
  readonly errors: string[] = [];

  add(kind: string, ms: number): void {
    const list = this.#ms.get(kind) ?? [];
    list.push(ms);
    this.#ms.set(kind, list);
  }

  /** Times one request; a thrown error or another status than `want` counts as an error. */
  async time(kind: string, want: number, work: () => Promise<Step>): Promise<Step | undefined> {
    const start = performance.now();
    try {
      const step = await work();
      this.add(kind, performance.now() - start);
      if (step.status !== want) this.errors.push(`${kind}: ${said("answered", step)}`);
      return step.status === want ? step : undefined;
    } catch (e) {
      this.errors.push(`${kind}: ${String((e as Error).cause ?? e)}`);
      return undefined;
    }
  }

  /** The requests of one pull, and everything wrong with what came back. */
  addPull(pull: PullResult): void {
    for (const r of pull.requests) this.add(`pull: ${r.kind} GET`, r.ms);
    this.errors.push(...pull.problems);
  }

  print(): void {
    const rows = [...this.#ms.entries()].map(([kind, ms]) => {
      const s = [...ms].sort((a, b) => a - b);
      return [kind, String(s.length), pct(s, 50), pct(s, 99), s.at(-1)!.toFixed(1)];
    });
    const head = ["request kind", "n", "p50 ms", "p99 ms", "max ms"];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (r: string[]): string =>
      r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
    console.log(line(head));
    for (const r of rows) console.log(line(r));
  }
}

/** Nearest-rank percentile of sorted values. */
function pct(sorted: readonly number[], p: number): string {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!.toFixed(1);
}

function log(msg: string): void {
  console.error(`[load] ${msg}`);
}

// ---------------------------------------------------------------------------------------------
// Pushing

type How = "monolithic" | "streamed";

interface PushedImage {
  repo: string;
  tag: string;
}

/** Pushes one blob into `repo` the way `how` says; true when every step answered as it should. */
async function pushLayer(rec: Recorder, base: string, repo: string, blob: BlobBytes, how: How): Promise<boolean> {
  if (how === "monolithic")
    return (await rec.time("push: blob POST ?digest=", 201, () => postWhole(base, repo, blob))) !== undefined;
  const open = await rec.time("push: upload POST (open)", 202, () => startUpload(base, repo));
  if (!open?.location) return false;
  const patched = await rec.time("push: PATCH (streamed)", 202, () => patchStreamed(open.location!, blob.bytes));
  if (!patched?.location) return false;
  return (
    (await rec.time("push: PUT ?digest= (close)", 201, () => closeUpload(patched.location!, blob.digest))) !== undefined
  );
}

/** An image of `layers`, each pushed the way `how` says, tagged `tag`. */
async function pushLayeredImage(
  rec: Recorder,
  base: string,
  image: PushedImage,
  layers: readonly BlobBytes[],
  how: How,
): Promise<boolean> {
  for (const layer of layers) if (!(await pushLayer(rec, base, image.repo, layer, how))) return false;
  const descriptors = layers.map((l) => ({ digest: l.digest, size: l.bytes.byteLength }));
  return (
    (await rec.time("push: config POST + manifest PUT", 201, () =>
      pushImage(base, image.repo, image.tag, descriptors),
    )) !== undefined
  );
}

/** Pulls each image; returns the ones that came back intact, and says what was wrong with the rest. */
async function intactImages(
  base: string,
  images: readonly PushedImage[],
): Promise<{ intact: PushedImage[]; problems: string[] }> {
  const intact: PushedImage[] = [];
  const problems: string[] = [];
  for (const image of images) {
    const pulled = await pullImage(base, image.repo, image.tag);
    if (pulled.problems.length === 0) intact.push(image);
    else problems.push(...pulled.problems);
  }
  return { intact, problems };
}

function summary(problems: readonly string[]): string {
  return problems.length === 0 ? "" : ` (${problems.slice(0, 3).join("; ")}${problems.length > 3 ? "; ..." : ""})`;
}

// ---------------------------------------------------------------------------------------------
// 1. Mixed load

async function mixedLoad(registry: Registry, work: string, deadline: number): Promise<PushedImage[]> {
  const base = registry.url;
  log("building and pushing a 2DFS image (2x4 field)");
  const img = await writeImage(
    join(work, "model"),
    anImage()
      .randomLayers(2, 32 * 1024)
      .name(PARTITION_REPO)
      .grid(2, 4)
      .allotmentBytes(256 * 1024),
  );
  await push(overHttp(base), PARTITION_REPO, img, "v1");
  // The partition's layers must be the base layers and row 0's allotments, before any load.
  const p = img.platforms[0]!;
  const expected = [
    ...p.layers.map((l) => l.descriptor.digest),
    ...p.allotments.filter((a) => a.row === 0).map((a) => a.layer.descriptor.digest),
  ];
  const first = await pullImage(base, PARTITION_REPO, PARTITION_REF);
  const served = first.blobs.slice(1);
  check(
    `partition ${PARTITION_REF} serves the base and row 0`,
    first.problems.length === 0 && served.join() === expected.join(),
    `${served.length} layers${summary(first.problems)}`,
  );

  const shared = Array.from({ length: PUSH_ROUNDS }, () => [randomBlob(BIG_LAYER), randomBlob(MiB)]);
  const rec = new Recorder();
  const pushed: PushedImage[] = [];
  let pulls = 0;
  let cutShort = false;
  log(
    `${PULLERS} pullers x ${PULLS_PER_PULLER} pulls of ${PARTITION_REF}, ${PUSHERS} pushers x ${PUSH_ROUNDS} images, at once`,
  );
  const started = performance.now();
  const puller = async (): Promise<void> => {
    for (let i = 0; i < PULLS_PER_PULLER; i++) {
      if (Date.now() > deadline) {
        cutShort = true;
        return;
      }
      const pull = await pullImage(base, PARTITION_REPO, PARTITION_REF).catch((e: unknown): PullResult => ({
        problems: [`pull failed: ${String((e as Error).cause ?? e)}`],
        requests: [],
        blobs: [],
      }));
      rec.addPull(pull);
      pulls++;
    }
  };
  const pusher = async (n: number): Promise<void> => {
    for (let round = 0; round < PUSH_ROUNDS; round++) {
      if (Date.now() > deadline) {
        cutShort = true;
        return;
      }
      const image = { repo: `load/pusher-${n}`, tag: `r${round}` };
      // Shared layers first and last, this pusher's own layer between: every push races the others.
      const layers = [shared[round]![0]!, randomBlob(2 * MiB), shared[round]![1]!];
      if (await pushLayeredImage(rec, base, image, layers, n % 2 === 0 ? "monolithic" : "streamed")) pushed.push(image);
    }
  };
  await Promise.all([
    ...Array.from({ length: PULLERS }, () => puller()),
    ...Array.from({ length: PUSHERS }, (_, n) => pusher(n)),
  ]);
  const seconds = (performance.now() - started) / 1000;

  console.log(`\n1. mixed load: ${pulls} partition pulls and ${pushed.length} image pushes in ${seconds.toFixed(1)} s`);
  rec.print();
  check(
    "mixed load finished within the time limit",
    !cutShort,
    cutShort ? "stopped at the deadline" : "all requests sent",
  );
  check("mixed load: errors", rec.errors.length === 0, `${rec.errors.length}${summary(rec.errors)}`);
  const after = await intactImages(base, pushed);
  check(
    "every pushed image pulls byte-identical afterwards",
    after.intact.length === PUSHERS * PUSH_ROUNDS,
    `${after.intact.length} of ${PUSHERS * PUSH_ROUNDS}${summary(after.problems)}`,
  );
  return [{ repo: PARTITION_REPO, tag: "v1" }, { repo: PARTITION_REPO, tag: PARTITION_REF }, ...pushed];
}

// ---------------------------------------------------------------------------------------------
// 2. Fan-in, then a collection

async function fanIn(registry: Registry, earlier: readonly PushedImage[]): Promise<PushedImage[]> {
  const base = registry.url;
  const blob = randomBlob(BIG_LAYER);
  const repos = Array.from({ length: FANOUT }, (_, i) => `load/fanin-${i}`);
  const rec = new Recorder();
  // Half stream their session first. Then the monolithic POSTs start, and the closing PUTs
  // follow one by one while those bodies are still arriving: a PUT is a few ms of work against
  // a POST's whole body, so sent at the same instant they would all finish first.
  const streamed = await Promise.all(
    repos.map(async (repo, i) => {
      if (i % 2 === 0) return undefined;
      const open = await rec.time("upload POST (open)", 202, () => startUpload(base, repo));
      return open?.location
        ? rec.time("PATCH (streamed)", 202, () => patchStreamed(open.location!, blob.bytes))
        : undefined;
    }),
  );
  const started = performance.now();
  const stored = await Promise.all(
    repos.map((repo, i) =>
      i % 2 === 0
        ? rec.time("blob POST ?digest=", 201, () => postWhole(base, repo, blob))
        : streamed[i]?.location
          ? sleep(((i - 1) / 2) * CLOSE_STAGGER_MS).then(() =>
              rec.time("PUT ?digest= (close)", 201, () => closeUpload(streamed[i]!.location!, blob.digest)),
            )
          : Promise.resolve(undefined),
    ),
  );
  const storeMs = performance.now() - started;
  const images: PushedImage[] = [];
  for (const [i, repo] of repos.entries()) {
    if (!stored[i]) continue;
    const layer = [{ digest: blob.digest, size: blob.bytes.byteLength }];
    if (await rec.time("config POST + manifest PUT", 201, () => pushImage(base, repo, "v1", layer)))
      images.push({ repo, tag: "v1" });
  }
  const report = await collectGarbage(base);
  const after = await intactImages(base, images);
  const before = await intactImages(base, earlier);
  console.log(
    `\n2. fan-in: one ${BIG_LAYER / MiB} MiB blob stored by ${FANOUT} repositories at once in ${storeMs.toFixed(0)} ms`,
  );
  console.log(`   collection (grace 0): ${JSON.stringify(report.total)}`);
  check("fan-in: errors", rec.errors.length === 0, `${rec.errors.length}${summary(rec.errors)}`);
  check(
    `fan-in: images still pull after the collection`,
    after.intact.length === FANOUT,
    `${after.intact.length} of ${FANOUT}${summary(after.problems)}`,
  );
  check(
    "images pushed earlier still pull after the collection",
    before.intact.length === earlier.length,
    `${before.intact.length} of ${earlier.length}${summary(before.problems)}`,
  );
  return images;
}

// ---------------------------------------------------------------------------------------------
// 3. Crash in the middle of a chunked upload

/** Sends the first half of a Content-Range PATCH of `bytes` and holds the rest back. */
function halfSentPatch(
  location: string,
  offset: number,
  bytes: Uint8Array,
): { outcome: Promise<string>; abandon(): void } {
  const req = request(location, {
    method: "PATCH",
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Range": `${offset}-${offset + bytes.byteLength - 1}`,
      "Content-Length": String(bytes.byteLength),
    },
  });
  const outcome = new Promise<string>((resolve) => {
    req.on("response", (res) => {
      res.resume();
      resolve(`answered ${res.statusCode}`);
    });
    req.on("error", (e: NodeJS.ErrnoException) => resolve(`connection ${e.code ?? e.message}`));
  });
  req.write(bytes.subarray(0, bytes.byteLength / 2));
  return { outcome, abandon: () => req.destroy() };
}

async function crashAndResume(
  registry: Registry,
  known: readonly PushedImage[],
  restart: () => Promise<Registry>,
): Promise<void> {
  const base = registry.url;
  const before = await pushImageBeforeCrash(base);
  const baseline = await intactImages(base, [...known, ...before]);
  log(`${baseline.intact.length} images pull intact before the crash`);

  const blob = randomBlob(CRASH_BLOB);
  const open = await startUpload(base, "load/crash");
  if (!open.location) throw new Error(said("POST upload", open));
  let location = open.location;
  let acked = 0;
  for (let i = 0; i < CRASH_AFTER_CHUNKS; i++) {
    const step = await patchRange(location, acked, blob.bytes.subarray(acked, acked + CRASH_CHUNK));
    if (step.status !== 202 || !step.location) throw new Error(said(`PATCH chunk ${i}`, step));
    location = step.location;
    acked += CRASH_CHUNK;
  }
  const cut = halfSentPatch(location, acked, blob.bytes.subarray(acked, acked + CRASH_CHUNK));
  // Long enough for the Worker to have read the half and started storing it.
  await sleep(500);
  const killedAt = performance.now();
  await registry.crash();
  const outcome = await Promise.race([cut.outcome, sleep(5_000).then(() => "no answer")]);
  cut.abandon();
  log(`SIGKILL with chunk ${CRASH_AFTER_CHUNKS} half sent; the client saw: ${outcome}`);

  const next = await restart();
  const restartMs = performance.now() - killedAt;
  // The session's path on the new instance (it listens on another port).
  const moved = new URL(new URL(location).pathname + new URL(location).search, next.url).toString();
  const status = await uploadStatus(moved);
  const end = /^0-(\d+)$/.exec(status.range ?? "")?.[1];
  const resumeAt = end === undefined ? 0 : Number(end) + 1;
  console.log(
    `\n3. crash: SIGKILL mid-PATCH (client saw: ${outcome}); serving again ${(restartMs / 1000).toFixed(1)} s later`,
  );
  check("the cut PATCH was not acknowledged", !outcome.startsWith("answered 2"), outcome);
  check(
    "after the restart the session reports the acknowledged chunks",
    status.status === 204 && resumeAt === acked,
    `${said("GET session", status)} Range ${status.range ?? "none"} (acknowledged 0-${acked - 1})`,
  );
  let resumed = status.status === 204;
  let at = resumeAt;
  let loc = status.location ?? moved;
  while (resumed && at < CRASH_BLOB) {
    const step = await patchRange(loc, at, blob.bytes.subarray(at, Math.min(at + CRASH_CHUNK, CRASH_BLOB)));
    resumed = step.status === 202 && step.location !== undefined;
    if (!resumed) check("resumed PATCH", false, said("PATCH", step));
    else {
      loc = step.location!;
      at = Math.min(at + CRASH_CHUNK, CRASH_BLOB);
    }
  }
  if (resumed) {
    const put = await closeUpload(loc, blob.digest);
    const read = put.status === 201 ? await readBlob(next.url, "load/crash", blob.digest) : undefined;
    const problem = read ? readProblem(read, { digest: blob.digest, size: CRASH_BLOB }) : said("PUT", put);
    check(
      `resumed from ${resumeAt} and closed: the ${CRASH_BLOB / MiB} MiB blob is intact`,
      !problem,
      problem ?? blob.digest,
    );
  }
  const after = await intactImages(next.url, baseline.intact);
  check(
    "nothing stored before the crash is lost",
    after.intact.length === baseline.intact.length,
    `${after.intact.length} of ${baseline.intact.length} images pull byte-identical${summary(after.problems)}`,
  );
}

/** One more image, pushed alone just before the crash: its writes are the freshest on disk. */
async function pushImageBeforeCrash(base: string): Promise<PushedImage[]> {
  const rec = new Recorder();
  const image = { repo: "load/before-crash", tag: "v1" };
  const ok = await pushLayeredImage(rec, base, image, [randomBlob(3 * MiB)], "streamed");
  check("image pushed just before the crash", ok, ok ? `${image.repo}:${image.tag}` : rec.errors.join("; "));
  return ok ? [image] : [];
}

// ---------------------------------------------------------------------------------------------

/** Runs one phase; an error (the registry stopped answering, say) is reported as a failed check. */
async function phase<T>(name: string, work: () => Promise<T>): Promise<T | undefined> {
  try {
    return await work();
  } catch (e) {
    check(`${name} ran to its end`, false, String((e as Error).cause ?? e));
    return undefined;
  }
}

async function main(): Promise<number> {
  const work = await mkdtemp(join(tmpdir(), "2dfs-bench-load-"));
  const persistDir = join(work, "state");
  const deadline = Date.now() + TIME_LIMIT_MS;
  let registry: Registry | undefined;
  // The run stops by itself: past the limit (and a minute for the last requests), give up.
  const watchdog = setTimeout(() => {
    console.error(`[load] still running ${TIME_LIMIT_MS / 1000 + 60} s in: giving up`);
    void (registry?.crash() ?? Promise.resolve()).finally(() => process.exit(2));
  }, TIME_LIMIT_MS + 60_000);
  try {
    const first = await startRegistry({ launcher: "npm start", vars: VARS, persistDir });
    registry = first;
    // Each phase builds on the one before; one that cannot finish ends the run as a failed check.
    const known = await phase("mixed load", () => mixedLoad(first, work, deadline));
    const fanned = known && (await phase("fan-in", () => fanIn(first, known)));
    if (known && fanned) {
      const restart = async (): Promise<Registry> =>
        (registry = await startRegistry({ launcher: "npm start", vars: VARS, persistDir }));
      await phase("crash and resume", () => crashAndResume(first, [...known, ...fanned], restart));
    }
  } finally {
    clearTimeout(watchdog);
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  }
  const failed = checks.filter((c) => !c.ok);
  console.log(`\n${checks.length - failed.length} of ${checks.length} checks passed`);
  for (const c of failed) console.log(`FAILED: ${c.what}: ${c.detail}`);
  return failed.length === 0 ? 0 : 1;
}

process.exitCode = await main();
