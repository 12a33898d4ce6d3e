/**
 * Pulls and polls answered at the edge (docs/edge.md): how many R2 and KV calls, and how long, a
 * partition pull takes when the bucket is next door and when it is one region away.
 *
 * The registry runs as `npm start` runs it, through the bench-only Worker bench/edge-worker.ts,
 * which delays every R2 call by BENCH_DELAY_MS (default 150) or fails them all. For a bucket delay
 * of 0 and of that, side by side, each on an image of its own:
 *
 * - containerd pulls a 9-layer partition three times, each from an empty content store: cold, the
 *   second pull (which fills the location's cache), and warm;
 * - 1,000 HEAD polls of the semantic tag;
 * - with every bucket call failing, the warm pull again, and a partition never asked for.
 *
 * Tags are remembered for TAG_TTL_SECONDS=30 here (the default, 0, asks the bucket for each tag).
 *
 *   node bench/edge.ts   (BENCH_DELAY_MS, BENCH_POLLS)
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Log, LogLevel, Miniflare, convertV4MiniflareOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions, unstable_readConfig } from "wrangler";
import { startContainerd, type Containerd } from "../test/helpers/containerd.ts";
import { freePort, REPO_ROOT } from "../test/helpers/process.ts";
import { anImage } from "../test/helpers/images/builder.ts";
import { writeImage } from "../test/helpers/images/layout.ts";
import { overHttp, push } from "../test/helpers/images/push.ts";

const DELAY_MS = Number(process.env.BENCH_DELAY_MS ?? 150);
const POLLS = Number(process.env.BENCH_POLLS ?? 1000);
/** 2 base layers + 7 allotments of a 2 x 4 field. */
const LABEL = "0.0.0.3--1.0.1.2";
const VARS = { AUTH_MODE: "none", DEBUG_TIMING: "1", TAG_TTL_SECONDS: "30", EDGE_TTL_SECONDS: "60" };
const log = (msg: string): void => console.error(`[bench] ${msg}`);

interface Counts {
  r2: number;
  kv: number;
}
interface Row {
  what: string;
  delay: number;
  seconds: number;
  counts: Counts;
  ok: boolean;
}

const work = await mkdtemp(join(tmpdir(), "2dfs-bench-edge-"));
const registry = await startEdgeWorker(work);
const containerd = await startContainerd();
const rows: Row[] = [];
try {
  const control = (q: string) => fetch(`${registry.url}/_bench/control?${q}`).then((r) => r.json());
  const counts = async (): Promise<Counts> =>
    (await fetch(`${registry.url}/_bench/counts?reset`)).json() as Promise<Counts>;
  const host = new URL(registry.url).host;
  const runs = [
    { delay: 0, memo: true },
    { delay: DELAY_MS, memo: true },
    // As the registry answered before it remembered anything at the edge.
    { delay: 0, memo: false },
  ];
  for (const { delay, memo } of runs) {
    const repo = `bench/edge-${delay}${memo ? "" : "-nomemo"}`;
    log(`bucket delay ${delay} ms${memo ? "" : ", nothing remembered"}: pushing a 2 x 4 field`);
    const settings = memo ? "EDGE_TTL_SECONDS=60&TAG_TTL_SECONDS=30" : "EDGE_TTL_SECONDS=0&TAG_TTL_SECONDS=0";
    await control(`delayMs=0&${settings}`);
    const image = await writeImage(
      join(work, `img-${delay}${memo ? "" : "-nomemo"}`),
      anImage()
        .randomLayers(2, 32 * 1024)
        .name(repo)
        .grid(2, 4)
        .allotmentBytes(256 * 1024),
    );
    await push(overHttp(registry.url), repo, image, "v1");
    await control(`delayMs=${delay}&${settings}`);
    const ref = `${host}/${repo}:v1--${LABEL}`;
    await counts();
    for (const what of ["cold pull", "second pull (fills the cache)", "warm pull"]) {
      const t = performance.now();
      const ok = await pull(containerd, ref);
      await new Promise((r) => setTimeout(r, 200)); // after-response work lands in the counts
      rows.push({
        what: memo ? what : `${what}, nothing remembered`,
        delay,
        seconds: (performance.now() - t) / 1000,
        counts: await counts(),
        ok,
      });
    }
    const t = performance.now();
    let ok = true;
    for (let i = 0; i < POLLS; i++) {
      const res = await fetch(`${registry.url}/v2/${repo}/manifests/v1--${LABEL}`, {
        method: "HEAD",
        headers: { Accept: "application/vnd.oci.image.index.v1+json" },
      });
      ok &&= res.status === 200;
    }
    rows.push({
      what: `${POLLS} HEAD polls${memo ? "" : ", nothing remembered"}`,
      delay,
      seconds: (performance.now() - t) / 1000,
      counts: await counts(),
      ok,
    });
  }
  log("every bucket call failing");
  await control("delayMs=0&failing=1&EDGE_TTL_SECONDS=60&TAG_TTL_SECONDS=30");
  const warmRef = `${host}/bench/edge-0:v1--${LABEL}`;
  let t = performance.now();
  const ok = await pull(containerd, warmRef);
  rows.push({
    what: "warm pull, bucket failing",
    delay: 0,
    seconds: (performance.now() - t) / 1000,
    counts: await counts(),
    ok,
  });
  t = performance.now();
  const cold = await fetch(`${registry.url}/v2/bench/edge-0/manifests/v1--0.0.0.0`);
  const body = (await cold.json()) as { errors?: { code: string }[] };
  rows.push({
    what: `a partition never asked for, bucket failing: ${cold.status} ${body.errors?.[0]?.code}`,
    delay: 0,
    seconds: (performance.now() - t) / 1000,
    counts: await counts(),
    ok: cold.status === 503 && body.errors?.[0]?.code === "UNAVAILABLE",
  });
  await control("failing=0");
} finally {
  await containerd.stop();
  await registry.stop();
  await rm(work, { recursive: true, force: true });
}

const width = Math.max(...rows.map((r) => r.what.length));
console.log(
  `\nedge: containerd pulls of a 9-layer partition and HEAD polls (R2 and KV calls, after-response work included)`,
);
console.log(`${"what".padEnd(width)}  delay   seconds   R2    KV   ok`);
for (const r of rows) {
  console.log(
    `${r.what.padEnd(width)}  ${String(r.delay).padStart(4)} ms ${r.seconds.toFixed(3).padStart(8)} ${String(r.counts.r2).padStart(5)} ${String(r.counts.kv).padStart(5)}   ${r.ok ? "yes" : "NO"}`,
  );
}
const at = (what: string, delay: number): Row => rows.find((r) => r.what === what && r.delay === delay)!;
for (const what of ["cold pull", "warm pull"]) {
  const ratio = at(what, DELAY_MS).seconds / at(what, 0).seconds;
  console.log(
    `${what}: ${DELAY_MS} ms bucket / bucket next door = ${ratio.toFixed(2)}${what === "warm pull" ? " (goal <= 1.2)" : ""}`,
  );
}
if (rows.some((r) => !r.ok)) process.exitCode = 1;

/** `ctr image pull` from an empty content store; whether it succeeded. */
async function pull(c: Containerd, ref: string): Promise<boolean> {
  await c.removeImage(ref).catch(() => undefined);
  const r = await c.ctr(["image", "pull", "--plain-http", "--snapshotter", "native", ref]).catch((e: Error) => e);
  if (r instanceof Error) {
    log(`pull failed: ${r.message.slice(0, 300)}`);
    return false;
  }
  return true;
}

/** bench/edge-worker.ts bundled as `wrangler deploy` bundles, served by Miniflare as `npm start` serves. */
async function startEdgeWorker(dir: string): Promise<{ url: string; stop(): Promise<void> }> {
  const out = join(dir, "bundle");
  const built = spawnSync(
    process.execPath,
    [
      join(REPO_ROOT, "node_modules/wrangler/bin/wrangler.js"),
      "deploy",
      "bench/edge-worker.ts",
      "--dry-run",
      `--outdir=${out}`,
    ],
    { cwd: REPO_ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" }, encoding: "utf8" },
  );
  if (built.status !== 0) throw new Error(`bundling bench/edge-worker.ts failed:\n${built.stdout}${built.stderr}`);
  const config = unstable_readConfig({ config: join(REPO_ROOT, "wrangler.toml") });
  const { workerOptions } = unstable_getMiniflareWorkerOptions(config);
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: "127.0.0.1",
      port: await freePort(),
      resourcePersistencePath: join(dir, "state"),
      log: new Log(LogLevel.WARN),
      cf: false,
      workers: [
        {
          ...workerOptions,
          name: "edge-bench",
          modulesRules: undefined,
          modules: [
            {
              type: "ESModule",
              path: join(REPO_ROOT, "edge-worker.js"),
              contents: await readFile(join(out, "edge-worker.js"), "utf8"),
            },
          ],
          bindings: { ...(workerOptions.bindings as Record<string, unknown>), ...VARS },
        },
      ],
    } as Parameters<typeof convertV4MiniflareOptions>[0]),
  );
  const url = (await mf.ready).origin;
  return { url, stop: () => mf.dispose() };
}
