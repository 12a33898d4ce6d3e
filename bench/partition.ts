/**
 * 2DFS partition benchmark (docs/benchmarks.md), run against the registry as a user runs it (`npm start`,
 * local R2 and KV) on this machine:
 *
 *   node bench/partition.ts
 *
 * 1. Pull time. containerd (fresh content store for every pull) pulls a partition of about
 *    200 MB of allotments, and a prebuilt ordinary image of the very same layer blobs, in
 *    alternating order; the ratio is the cost of serving a partition. Target: under 1 %.
 * 2. Computation time. Fields of 1,000 and 10,000 tiny allotments; each cold request asks for a
 *    selection never asked before, each cached one repeats a selection. Times are taken from
 *    outside, since `performance.now()` does not advance inside workerd during CPU work; the
 *    plain manifest GET is the baseline that a cached answer should match. Target: under 5 ms
 *    per 1,000 allotments cold.
 *
 * Environment: BENCH_REPS (pull repetitions per kind, default 5), BENCH_ALLOTMENT_MB (default 25),
 * BENCH_ONLY=pull or BENCH_ONLY=compute to run one half.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ImageIndex } from "../core/oci/manifest.ts";
import { MediaType } from "../core/oci/media-types.ts";
import { anImage } from "../test/helpers/images/builder.ts";
import { writeImage } from "../test/helpers/images/layout.ts";
import { overHttp, push } from "../test/helpers/images/push.ts";
import { flatImageOf, type Cell } from "../test/helpers/images/selection.ts";
import { startContainerd } from "../test/helpers/containerd.ts";
import { logMark, requestsSince } from "../test/helpers/request-log.ts";
import { pushBlob } from "../test/helpers/oci.ts";
import { startRegistry, type Registry } from "../test/helpers/wrangler-dev.ts";
import { pushFieldImage } from "./field-image.ts";

const REPS = Number(process.env.BENCH_REPS ?? 5);
const ALLOTMENT_MB = Number(process.env.BENCH_ALLOTMENT_MB ?? 25);
const ONLY = process.env.BENCH_ONLY;
const ACCEPT = [MediaType.OciIndex, MediaType.OciManifest].join(", ");

interface Row {
  what: string;
  value: string;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), "2dfs-bench-"));
  const registry = await startRegistry({ launcher: "npm start" });
  const rows: Row[] = [];
  try {
    if (ONLY !== "compute") rows.push(...(await pullTime(registry, work)));
    if (ONLY !== "pull") {
      const fields = [];
      for (const [r, c] of FIELD_SHAPES) {
        const result = await computationTime(registry, r, c);
        rows.push(...result.rows);
        fields.push(result);
      }
      rows.push(...costModel(fields), await writeCost(registry));
    }
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
  printTable(rows);
}

// ---------------------------------------------------------------------------------------------
// Pull time

/** 3x4 field; the partition takes rows 0-1 (8 allotments, ~200 MB) and leaves row 2 out. */
const PULL_LABEL = "0.0.1.3";
const PULL_CELLS: Cell[] = [0, 1].flatMap((r) => [0, 1, 2, 3].map((c) => [r, c] as const));

async function pullTime(registry: Registry, work: string): Promise<Row[]> {
  const repo = "bench/model";
  log(`building a 3x4 field of ${ALLOTMENT_MB} MB allotments`);
  const img = await writeImage(
    join(work, "model"),
    anImage()
      .randomLayers(2, 32 * 1024)
      .name(repo)
      .grid(3, 4)
      .allotmentBytes(ALLOTMENT_MB * 1024 * 1024),
  );
  log("pushing it, and an ordinary image of the partition's blobs as :flat");
  await push(overHttp(registry.url), repo, img, "v1");
  // Its layers are in the repository already: only configs and manifests are new.
  const flat = await flatImageOf(img, PULL_CELLS).build(img.layout);
  await push(overHttp(registry.url), repo, flat, "flat", { skipPresent: true });
  const bytes = [...img.platforms[0]!.layers.map((l) => l.descriptor.size)]
    .concat(img.platforms[0]!.allotments.filter((a) => a.row <= 1).map((a) => a.layer.descriptor.size))
    .reduce((a, b) => a + b, 0);

  const refs = { partition: `${registry.host}/${repo}:v1--${PULL_LABEL}`, flat: `${registry.host}/${repo}:flat` };
  // The first pull of the partition computes it; the repetitions below are what a fleet sees.
  const first = await timedPull(registry, refs.partition, "pull");
  await timedPull(registry, refs.flat, "pull");
  const times: Record<Kind, Record<Mode, number[]>> = {
    partition: { pull: [], fetch: [] },
    flat: { pull: [], fetch: [] },
  };
  const manifestMs: Record<Kind, number[]> = { partition: [], flat: [] };
  for (let i = 0; i < REPS; i++) {
    const order: Kind[] = i % 2 === 0 ? ["partition", "flat"] : ["flat", "partition"];
    for (const mode of ["pull", "fetch"] as const) {
      for (const kind of order) {
        const t = await timedPull(registry, refs[kind], mode);
        times[kind][mode].push(t.ms);
        manifestMs[kind].push(t.manifestMs);
      }
    }
    log(`rep ${i + 1}/${REPS}: pull ${fmtPair(times, "pull", i)}, fetch ${fmtPair(times, "fetch", i)}`);
  }
  const out: Row[] = [
    { what: `pull: bytes in the partition (base + 8 allotments)`, value: `${(bytes / 1e6).toFixed(1)} MB` },
    { what: "pull: first partition pull (computed, cold)", value: `${first.ms.toFixed(0)} ms` },
  ];
  for (const mode of ["pull", "fetch"] as const) {
    const p = median(times.partition[mode]);
    const f = median(times.flat[mode]);
    const what = mode === "pull" ? "ctr image pull (fetch + unpack)" : "ctr content fetch (fetch only)";
    out.push(
      { what: `${what}: partition, median of ${REPS}`, value: `${p.toFixed(0)} ms (${mbps(bytes, p)})` },
      { what: `${what}: prebuilt image, median of ${REPS}`, value: `${f.toFixed(0)} ms (${mbps(bytes, f)})` },
      { what: `${what}: partition / prebuilt`, value: `${((p / f - 1) * 100).toFixed(2)} %` },
    );
  }
  // Wall times on a shared 2-core machine swing by far more than 1 %; the registry's own time
  // for the manifest requests of a pull is where a partition differs from a prebuilt image.
  const pm = median(manifestMs.partition);
  const fm = median(manifestMs.flat);
  out.push(
    { what: "registry time on a pull's manifest requests: partition", value: `${pm.toFixed(0)} ms (median)` },
    { what: "registry time on a pull's manifest requests: prebuilt", value: `${fm.toFixed(0)} ms (median)` },
    {
      what: "difference, as a share of the median prebuilt pull",
      value: `${(((pm - fm) / median(times.flat.pull)) * 100).toFixed(2)} %`,
    },
  );
  return out;
}

type Kind = "partition" | "flat";
type Mode = "pull" | "fetch";

/**
 * One pull into a fresh containerd, so nothing is already there: the wall time of ctr alone, and
 * the time workerd spent on its manifest requests, as wrangler logs it.
 */
async function timedPull(registry: Registry, ref: string, mode: Mode): Promise<{ ms: number; manifestMs: number }> {
  const containerd = await startContainerd();
  try {
    const mark = logMark(registry);
    const start = performance.now();
    if (mode === "pull") await containerd.pull(ref, { platform: "linux/amd64" });
    else await containerd.ctr(["content", "fetch", "--plain-http", "--platform", "linux/amd64", ref]);
    const ms = performance.now() - start;
    const requests = await requestsSince(registry, mark);
    const manifestMs = requests.filter((r) => r.path.includes("/manifests/")).reduce((sum, r) => sum + r.ms, 0);
    return { ms, manifestMs };
  } finally {
    await containerd.stop();
  }
}

function fmtPair(t: Record<string, Record<string, number[]>>, mode: string, i: number): string {
  return `partition ${t.partition![mode]![i]!.toFixed(0)} ms / prebuilt ${t.flat![mode]![i]!.toFixed(0)} ms`;
}

// ---------------------------------------------------------------------------------------------
// Computation time

const COLD_REQUESTS = 15;
const WARM_REQUESTS = 30;

/** Fields of 16, 1,000 and 10,000 allotments: the smallest shows the fixed cost of a cold answer. */
const FIELD_SHAPES: readonly (readonly [rows: number, cols: number])[] = [
  [4, 4],
  [20, 50],
  [100, 100],
];

interface FieldResult {
  rows: Row[];
  n: number;
  coldGet: number;
  plainGet: number;
}

async function computationTime(registry: Registry, rows: number, cols: number): Promise<FieldResult> {
  const n = rows * cols;
  const repo = `bench/field-${n}`;
  const base = registry.url;
  log(`pushing ${n} allotments (${rows}x${cols}) to ${repo}`);
  let putManifest = 0;
  const { pushSeconds } = await pushFieldImage(base, repo, rows, cols, async (put) => {
    putManifest = await timed(put);
  });

  const url = (tag: string): string => `${base}/v2/${repo}/manifests/${tag}`;
  // Warm the connection and the isolate before anything is timed.
  for (let i = 0; i < 5; i++) await request(url("v1"), "GET");

  const plainGet = await repeat(WARM_REQUESTS, () => request(url("v1"), "GET"));
  const plainHead = await repeat(WARM_REQUESTS, () => request(url("v1"), "HEAD"));
  const labels = coldLabels(rows, cols);
  const coldGet = await repeat(COLD_REQUESTS, () => request(url(`v1--${labels.next().value!}`), "GET"));
  const coldHead = await repeat(COLD_REQUESTS, () => request(url(`v1--${labels.next().value!}`), "HEAD"));
  const cachedLabel = `v1--0.0.${rows - 1}.${cols - 1}`;
  const cachedGet = await repeat(WARM_REQUESTS, () => request(url(cachedLabel), "GET"));
  const cachedHead = await repeat(WARM_REQUESTS, () => request(url(cachedLabel), "HEAD"));

  // Per 1,000 allotments only where there are that many: the fixed cost would swamp a small field.
  const per1k = (ms: number): string =>
    n < 1000 ? "" : `, ${((ms - median(plainGet)) / (n / 1000)).toFixed(2)} ms / 1k over baseline`;
  // The partition's platform manifest and config grow with the selection: what reading them costs.
  const top = (await (await fetch(url(cachedLabel), { headers: { Accept: ACCEPT } })).json()) as ImageIndex;
  const child = url(top.manifests[0]!.digest);
  const childSize = (await (await fetch(child, { headers: { Accept: ACCEPT } })).arrayBuffer()).byteLength;
  const childGet = await repeat(WARM_REQUESTS, () => request(child, "GET"));
  const tag = `${n} allotments`;
  const out: Row[] = [
    {
      what: `${tag}: push of the allotments`,
      value: `${pushSeconds.toFixed(1)} s (${(n / pushSeconds).toFixed(0)}/s)`,
    },
    { what: `${tag}: manifest PUT (records the field facts)`, value: `${putManifest.toFixed(0)} ms` },
    { what: `${tag}: plain tag GET (baseline)`, value: fmtMs(plainGet) },
    { what: `${tag}: plain tag HEAD`, value: fmtMs(plainHead) },
    { what: `${tag}: cold partition GET`, value: `${fmtMs(coldGet)}${per1k(median(coldGet))}` },
    { what: `${tag}: cold partition HEAD`, value: `${fmtMs(coldHead)}${per1k(median(coldHead))}` },
    { what: `${tag}: cached partition GET`, value: fmtMs(cachedGet) },
    { what: `${tag}: cached partition HEAD`, value: fmtMs(cachedHead) },
    { what: `${tag}: its platform manifest GET (${(childSize / 1e6).toFixed(2)} MB)`, value: fmtMs(childGet) },
  ];
  return { rows: out, n, coldGet: median(coldGet), plainGet: median(plainGet) };
}

/** For scale: what one small stored write costs here (a monolithic 64-byte blob push, sequential). */
async function writeCost(registry: Registry): Promise<Row> {
  const times = await repeat(WARM_REQUESTS, async () => {
    await pushBlob(registry.url, "bench/writes", randomBytes(64));
  });
  return { what: "reference: 64-byte blob POST (hash, R2 put, link)", value: fmtMs(times) };
}

/**
 * Distinct selections of a full field, largest first: every rectangle selects a different set of
 * cells, so none of them can be answered from the cache.
 */
function* coldLabels(rows: number, cols: number): Generator<string> {
  for (let x1 = 0; x1 < rows; x1++) {
    for (let y1 = 0; y1 < cols; y1++) {
      for (let x2 = rows - 1; x2 >= x1; x2--) {
        for (let y2 = cols - 1; y2 >= y1; y2--) yield `${x1}.${y1}.${x2}.${y2}`;
      }
    }
  }
}

/**
 * A cold answer costs a fixed part (storage reads and writes) plus a part that grows with the
 * field (reading and parsing its facts, building the layer list): the smallest field gives the
 * first, the slope between the two large ones the second.
 */
function costModel(fields: readonly FieldResult[]): Row[] {
  const over = (f: FieldResult): number => f.coldGet - f.plainGet;
  const [small, mid, large] = [fields[0]!, fields[1]!, fields[2]!];
  const slope = (over(large) - over(mid)) / ((large.n - mid.n) / 1000);
  return [
    { what: `cold GET over baseline, ${small.n}-allotment field (fixed cost)`, value: `${over(small).toFixed(2)} ms` },
    {
      what: `cold GET, marginal cost per 1,000 allotments (${mid.n} -> ${large.n})`,
      value: `${slope.toFixed(2)} ms / 1k`,
    },
  ];
}

async function request(url: string, method: "GET" | "HEAD"): Promise<void> {
  const res = await fetch(url, { method, headers: { Accept: ACCEPT } });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`${method} ${url}: ${res.status}`);
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

async function repeat(times: number, fn: () => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < times; i++) out.push(await timed(fn));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Output

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function fmtMs(xs: readonly number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return `median ${median(s).toFixed(2)} ms (min ${s[0]!.toFixed(2)}, max ${s.at(-1)!.toFixed(2)}, n=${s.length})`;
}

function mbps(bytes: number, ms: number): string {
  return `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
}

function printTable(rows: readonly Row[]): void {
  const width = Math.max(...rows.map((r) => r.what.length));
  console.log(`\n${"measure".padEnd(width)}  value\n${"-".repeat(width)}  ${"-".repeat(40)}`);
  for (const r of rows) console.log(`${r.what.padEnd(width)}  ${r.value}`);
}

function log(msg: string): void {
  console.error(`[bench] ${msg}`);
}

await main();
