/**
 * Build throughput of `2dfs-push build` against the tools a user would compare it with, on the
 * same files in the same run (docs/benchmarks.md):
 *   (a) 1 GiB of compressible data in 16 allotments, --compression gzip, vs `tar -c | pigz -p <cores>`
 *       at the same level: target >= 0.9x;
 *   (b) 1 GiB of random (weight-like) data, --compression auto, vs `sha256sum` over the files:
 *       target >= 0.7x;
 *   (c) the rebuild after changing 1 of 16 allotments, as a fraction of the full build, for the
 *       random data of (b) and the compressible data of (a): target <= 1.5/16;
 *   (d) start-up: `2dfs-push --version` against a bare `node -e 0`: target <= 3x.
 * And (e): `init --stages 3` of a 12-layer model in 4 safetensors shards, once with 24 MB of weights
 * and once with about 97 GB (sparse files: only the headers are read): target < 0.2 s for both.
 * The CLI is the packed one (dist/, bundled first as `npm pack` does) and runs as a subprocess,
 * start-up included. Files are read once beforehand so every
 * contender starts from a warm page cache. Each line gives wall time and CPU time (user + sys,
 * children included): on a shared machine the wall ratio moves with the load, the CPU ratio less.
 * Run: `node bench/build.ts [MiB per allotment]`.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { writeHfModel } from "../test/helpers/hf-model.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CLI = path.join(ROOT, "builder-cli/dist/2dfs-push.js");
const ALLOTMENTS = 16;
const MIB = 1024 * 1024;
const PER_ALLOTMENT = Number(process.argv[2] ?? 64) * MIB;
const TOTAL = ALLOTMENTS * PER_ALLOTMENT;
const CORES = os.availableParallelism();
const LEVEL = 6;

// What a user installs: bundle it as `npm pack` would.
const bundled = spawnSync(process.execPath, [path.join(ROOT, "builder-cli/scripts/bundle.mjs")], { encoding: "utf8" });
if (bundled.status !== 0) throw new Error(`bundling the CLI failed: ${bundled.stderr}`);

const work = await mkdtemp(path.join(os.tmpdir(), "2dfs-bench-build-"));
try {
  console.log(
    `${ALLOTMENTS} allotments x ${PER_ALLOTMENT / MIB} MiB = ${TOTAL / MIB} MiB, ${CORES} cores, gzip level ${LEVEL}`,
  );

  startup();
  await initTime();

  // (a) compressible
  const text = path.join(work, "text");
  await makeTree(text, compressibleFile);
  await warm(text);
  const pigz = timed(`tar -c -C ${text} data | pigz -p ${CORES} -${LEVEL} > /dev/null`);
  const gzip = timed(
    cliCommand(["build", "--compression", "gzip", "--level", String(LEVEL), "scratch", "bench/text:v1"], text, "a"),
  );
  report("(a) gzip build", gzip, "tar | pigz", pigz, 0.9);

  // (b) random
  const rand = path.join(work, "random");
  await makeTree(rand, async () => randomBytes(PER_ALLOTMENT));
  await warm(rand);
  const files = Array.from({ length: ALLOTMENTS }, (_, i) => path.join(rand, "data", `part-${i}.bin`));
  const sha = timed(`sha256sum ${files.join(" ")} > /dev/null`);
  const auto = timed(cliCommand(["build", "scratch", "bench/random:v1"], rand, "b"));
  report("(b) auto build", auto, "sha256sum", sha, 0.7);

  // (c) incremental: rewrite one allotment's file, rebuild with the cache of the full build. Both
  // data sets: with random data the per-allotment work is two SHA-256 passes, so the CLI's fixed
  // start-up weighs most; with gzip it is the compression.
  await rewrite(rand, 7, () => randomBytes(PER_ALLOTMENT));
  incremental("(c) incremental rebuild, random data, auto", rand, "b", auto);
  await rewrite(text, 7, () => compressibleFile(ALLOTMENTS + 7));
  incremental("(c) incremental rebuild, compressible data, gzip", text, "a", gzip, [
    "--compression",
    "gzip",
    "--level",
    String(LEVEL),
  ]);
} finally {
  await rm(work, { recursive: true, force: true });
}

/** (d) The median of several runs each, so one slow start on a shared machine does not decide it. */
function startup(): void {
  const RUNS = 15;
  const node = path.join(ROOT, "node_modules/.bin/node");
  const median = (command: string): number => {
    const walls = Array.from({ length: RUNS }, () => timed(command).wall).sort((a, b) => a - b);
    return walls[Math.floor(RUNS / 2)]!;
  };
  timed(`${node} ${CLI} --version`); // fills the compile cache, as any earlier run would have
  const bare = median(`${node} -e 0`);
  const cli = median(`${node} ${CLI} --version`);
  const ratio = cli / bare;
  console.log(
    `(d) start-up, 2dfs-push --version: ${(cli * 1000).toFixed(0)} ms; node -e 0: ${(bare * 1000).toFixed(0)} ms; ` +
      `ratio ${ratio.toFixed(2)}x (median of ${RUNS}; target <= 3x) ${ratio <= 3 ? "OK" : "MISSED"}`,
  );
}

/** (e) The median wall time of `init --stages 3` on a small and on a huge model: headers only, so the same. */
async function initTime(): Promise<void> {
  const RUNS = 9;
  const models = [
    { label: "random data", dir: path.join(work, "init-small"), opts: {} },
    {
      label: "sparse files",
      dir: path.join(work, "init-huge"),
      opts: { data: "sparse" as const, shape: { hidden: 16384, intermediate: 53248, vocab: 128256 } },
    },
  ];
  for (const m of models) {
    const model = await writeHfModel(m.dir, m.opts);
    const bytes = model.shards.reduce((n, s) => n + s.size, 0);
    const command = cliCommand(["init", "--stages", "3", "--force"], m.dir, "init");
    timed(command);
    const walls = Array.from({ length: RUNS }, () => timed(command).wall).sort((a, b) => a - b);
    const median = walls[Math.floor(RUNS / 2)]!;
    console.log(
      `(e) init --stages 3, 12 layers in 4 shards, ${(bytes / 1e9).toFixed(3)} GB of ${m.label}: ` +
        `${(median * 1000).toFixed(0)} ms (median of ${RUNS}; target < 200 ms) ${median < 0.2 ? "OK" : "MISSED"}`,
    );
  }
}

/** Rewrites one allotment's file and warms the page cache again. */
async function rewrite(dir: string, i: number, content: () => Buffer | Promise<Buffer>): Promise<void> {
  await writeFile(path.join(dir, "data", `part-${i}.bin`), await content());
  await warm(dir);
}

/** Rebuilds after `rewrite` and reports the time as a fraction of the full build. */
function incremental(label: string, dir: string, state: string, full: Timing, flags: string[] = []): void {
  const tag = state === "a" ? "bench/text:v1" : "bench/random:v1";
  const incr = timed(cliCommand(["build", "--json", ...flags, "scratch", tag], dir, state));
  const out = JSON.parse(incr.stdout) as { rebuilt: number; cached: number };
  if (out.rebuilt !== 1 || out.cached !== ALLOTMENTS - 1)
    throw new Error(`expected 1 rebuilt, got ${incr.stdout.slice(0, 200)}`);
  const fraction = incr.wall / full.wall;
  const target = 1.5 / ALLOTMENTS;
  console.log(
    `${label} (1 of ${ALLOTMENTS}): ${incr.wall.toFixed(2)} s = ${fraction.toFixed(3)} of the full build ` +
      `(CPU ${(incr.cpu / full.cpu).toFixed(3)}; target <= ${target.toFixed(3)}) ${fraction <= target ? "OK" : "MISSED"}`,
  );
}

/** A tree with one file per allotment under data/ and a 2dfs.json placing them in a 4x4 grid. */
async function makeTree(dir: string, content: (i: number) => Promise<Buffer>): Promise<void> {
  await mkdir(path.join(dir, "data"), { recursive: true });
  const allotments = [];
  for (let i = 0; i < ALLOTMENTS; i++) {
    await writeFile(path.join(dir, "data", `part-${i}.bin`), await content(i));
    allotments.push({ src: `data/part-${i}.bin`, dst: `/model/part-${i}.bin`, row: Math.floor(i / 4), col: i % 4 });
  }
  await writeFile(path.join(dir, "2dfs.json"), JSON.stringify({ allotments }));
}

/**
 * Text-like data that gzip shrinks about 2.3x: words and numbers drawn by a seeded xorshift
 * generator, so no window repeats and deflate does the work it does on real text.
 */
async function compressibleFile(i: number): Promise<Buffer> {
  const words =
    "model layer weight tensor bias attention head token embed norm scale shard rank grad step loss the of and to in is that for it as with was on be by this are from at or an have not which but".split(
      " ",
    );
  const out = Buffer.allocUnsafe(PER_ALLOTMENT);
  let x = (0x9e3779b9 ^ (i + 1)) >>> 0;
  const next = (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
  let at = 0;
  while (at < out.length) {
    const r = next();
    const token = r & 1 ? words[(r >>> 1) % words.length]! : String((r >>> 8) % 100000);
    at += out.write(token + (r >>> 28 === 0 ? "\n" : " "), at, "latin1");
  }
  return out;
}

async function warm(dir: string): Promise<void> {
  for (let i = 0; i < ALLOTMENTS; i++) {
    const fh = await open(path.join(dir, "data", `part-${i}.bin`), "r");
    const buf = Buffer.allocUnsafe(4 * MIB);
    while ((await fh.read(buf, 0, buf.length)).bytesRead > 0);
    await fh.close();
  }
  await readFile(path.join(dir, "2dfs.json"));
}

/** The shell command that runs the CLI with the cache and store of one scenario. */
function cliCommand(args: string[], cwd: string, state: string): string {
  const env = [
    `PATH=${path.join(ROOT, "node_modules/.bin")}:$PATH`,
    `XDG_CACHE_HOME=${path.join(work, `cache-${state}`)}`,
    `XDG_DATA_HOME=${path.join(work, `data-${state}`)}`,
  ];
  return `cd ${cwd} && env ${env.join(" ")} node ${CLI} ${args.join(" ")}`;
}

interface Timing {
  wall: number;
  /** user + sys seconds of the command and its children. */
  cpu: number;
  stdout: string;
}

/** Runs a shell command under bash's `time`, which reports wall, user and sys seconds. */
function timed(command: string): Timing {
  const r = spawnSync("bash", ["-c", `TIMEFORMAT='%R %U %S'; time ( ${command} )`], {
    encoding: "utf8",
    maxBuffer: 64 * MIB,
  });
  if (r.status !== 0) throw new Error(`${command} failed: ${r.stderr}`);
  const [wall, user, sys] = r.stderr.trim().split("\n").at(-1)!.split(" ").map(Number) as [number, number, number];
  return { wall, cpu: user + sys, stdout: r.stdout };
}

function report(name: string, ours: Timing, otherName: string, other: Timing, target: number): void {
  const mbs = (s: number): string => `${(TOTAL / 1e6 / s).toFixed(0)} MB/s`;
  const ratio = other.wall / ours.wall;
  console.log(
    `${name}: ${ours.wall.toFixed(2)} s, ${mbs(ours.wall)}, CPU ${ours.cpu.toFixed(2)} s; ` +
      `${otherName}: ${other.wall.toFixed(2)} s, ${mbs(other.wall)}, CPU ${other.cpu.toFixed(2)} s; ` +
      `ratio ${ratio.toFixed(2)}x (CPU ${(other.cpu / ours.cpu).toFixed(2)}x; target >= ${target}x) ${ratio >= target ? "OK" : "MISSED"}`,
  );
}
