/**
 * CPU costs of the registry's heavy requests, for the deploy's `[limits] cpu_ms` (docs/benchmarks.md).
 * Inside workerd `performance.now()` stands still while code runs, so every figure is the CPU
 * time the kernel counted for the Worker's workerd process over the request(s), divided out.
 * That process also runs miniflare's local R2 and cache (their MD5 etags,
 * file writes and reads), so upload and read figures are upper bounds for what Cloudflare bills.
 *
 * 1. Bytes: a 1 GB upload in one PATCH (hashed in line and written), one in a monolithic POST,
 *    a GET (read only), and the close of a 1 GB upload made of 11 chunks (every piece read back
 *    through the hash). Hashing per MB is the close minus the read.
 * 2. Partitions: cold partition GETs on fields of 1,000 and 10,000 allotments (a new selection
 *    each, so each is computed); the slope between the two is the cost per 1,000 allotments.
 * 3. The manifest PUT of an image with a 10,000-allotment field (it records the field's facts).
 *
 *   node bench/cpu.ts   (BENCH_CPU_MB: bytes of part 1 in MB, default 1000; BENCH_ONLY=bytes or fields)
 */
import { MediaType } from "../core/oci/media-types.ts";
import { DEFAULTS } from "../worker/config.ts";
import { startRegistry, type Registry } from "../test/helpers/wrangler-dev.ts";
import { pushFieldImage } from "./field-image.ts";
import { generatedBlob, pushGenerated, pushMonolithic } from "../test/helpers/big-blobs.ts";
import { cpuDuring, findWorkerd } from "../test/helpers/workerd-proc.ts";

const MB = Number(process.env.BENCH_CPU_MB ?? 1000);
const COLD = 10;
const ONLY = process.env.BENCH_ONLY;
const ACCEPT = [MediaType.OciIndex, MediaType.OciManifest].join(", ");
const log = (msg: string): void => console.error(`[bench] ${msg}`);

// As `npm start` runs it, but with the deploy's blob caching: the GET's figure includes the fill.
const registry = await startRegistry({
  launcher: "npm start",
  vars: { CACHE_MAX_BLOB_BYTES: String(DEFAULTS.cacheMaxBlobBytes) },
});
try {
  const pid = findWorkerd(registry.port).worker;
  const rows: [string, string][] = [];

  if (ONLY !== "fields") rows.push(...(await byteCosts(pid)));
  if (ONLY !== "bytes") rows.push(...(await partitionCosts(pid)));

  const width = Math.max(...rows.map(([w]) => w.length));
  console.log(`\nworkerd CPU, measured from /proc (user + system)\n${"measure".padEnd(width)}  value`);
  for (const [w, v] of rows) console.log(`${w.padEnd(width)}  ${v}`);
} finally {
  await registry.stop();
}

function per(cpu: number, n: number, unit: string): string {
  return `${((cpu * 1000) / n).toFixed(2)} ms ${unit}`;
}

async function byteCosts(pid: number): Promise<[string, string][]> {
  log(`bytes: ${MB} MB in one PATCH, then its GET, then ${MB} MB in chunks closed by a PUT`);
  const bytes = MB * 1e6;
  const one = generatedBlob(bytes);
  const upload = await cpuDuring(pid, () => pushGenerated(registry.url, "bench/cpu", one));
  const whole = generatedBlob(bytes);
  const monolithic = await cpuDuring(pid, () => pushMonolithic(registry.url, "bench/cpu", whole));
  const read = await cpuDuring(pid, () => getAll(`${registry.url}/v2/bench/cpu/blobs/${one.digest}`));
  const chunked = generatedBlob(bytes);
  const chunk = Math.ceil(bytes / 11);
  const { closeCpu = 0 } = await pushGenerated(registry.url, "bench/cpu", chunked, chunk, pid);
  const closeOnly = closeCpu;
  const hashPerMb = Math.max(0, closeOnly - read.cpu) / MB;
  return [
    ["upload in one PATCH (hash in line + local R2 write)", per(upload.cpu, MB, "/ MB")],
    ["monolithic upload, POST ?digest= (hash in line + local R2 write)", per(monolithic.cpu, MB, "/ MB")],
    ["GET of the same blob (local R2 read, sent)", per(read.cpu, MB, "/ MB")],
    [
      `close of a ${MB} MB upload in 11 pieces (read back + hash)`,
      `${closeOnly.toFixed(2)} s, ${per(closeOnly, MB, "/ MB")}`,
    ],
    ["hashing at close (close minus GET)", per(hashPerMb * MB, MB, "/ MB")],
    [
      "close of a 5 GiB upload, extrapolated",
      `${(((closeOnly / MB) * 5 * 1024 ** 3) / 1e6).toFixed(1)} s of CPU (local upper bound)`,
    ],
  ];
}

async function partitionCosts(pid: number): Promise<[string, string][]> {
  const rows: [string, string][] = [];

  const fields: { n: number; cold: number; plain: number; put: number }[] = [];
  for (const [r, c] of [
    [20, 50],
    [100, 100],
  ] as const) {
    log(`fields: ${r * c} allotments`);
    fields.push(await fieldCosts(registry, pid, r, c));
  }
  const [mid, large] = [fields[0]!, fields[1]!];
  for (const f of fields) {
    rows.push(
      [
        `${f.n} allotments: cold partition GET`,
        `${(f.cold * 1000).toFixed(1)} ms (plain manifest GET ${(f.plain * 1000).toFixed(1)} ms)`,
      ],
      [`${f.n} allotments: manifest PUT with the field`, `${(f.put * 1000).toFixed(0)} ms`],
    );
  }
  const slope = (large.cold - mid.cold) / ((large.n - mid.n) / 1000);
  rows.push(["cold partition, CPU per 1,000 allotments (1,000 -> 10,000 slope)", `${(slope * 1000).toFixed(2)} ms`]);
  return rows;
}

async function getAll(url: string): Promise<void> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
  for await (const chunk of res.body!) void chunk;
}

/** CPU seconds of one cold partition GET (median of COLD), one plain GET, and the manifest PUT. */
async function fieldCosts(
  registry: Registry,
  pid: number,
  rows: number,
  cols: number,
): Promise<{ n: number; cold: number; plain: number; put: number }> {
  const n = rows * cols;
  const repo = `bench/cpu-field-${n}`;
  const base = registry.url;
  let put = 0;
  await pushFieldImage(base, repo, rows, cols, async (manifestPut) => {
    put = (await cpuDuring(pid, manifestPut)).cpu;
  });
  const get = async (ref: string): Promise<void> => {
    const res = await fetch(`${base}/v2/${repo}/manifests/${ref}`, { headers: { Accept: ACCEPT } });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`GET ${ref}: ${res.status}`);
  };
  for (let i = 0; i < 3; i++) await get("v1");
  const plain = await cpuDuring(pid, async () => {
    for (let i = 0; i < COLD; i++) await get("v1");
  });
  // Distinct rectangles: every one selects another set of cells, so none is answered from a cache.
  const cold = await cpuDuring(pid, async () => {
    for (let i = 0; i < COLD; i++) await get(`v1--0.0.${rows - 1 - (i % rows)}.${cols - 1 - Math.floor(i / rows)}`);
  });
  return { n, cold: cold.cpu / COLD, plain: plain.cpu / COLD, put };
}
