/**
 * Registry benchmark (docs/benchmarks.md): our registry as `npm start` runs it (scripts/serve.ts: the
 * deploy's bundle in workerd, local R2 on disk) against the distribution registry (Debian
 * `docker-registry`), both started here, on the same machine in the same run.
 *
 * 1. skopeo pushes a 1 GiB image of 8 random layers to each, then pulls it twice (best of two).
 * 2. curl GETs the 8 layer blobs one after another (what a registry's serving costs without
 *    skopeo's own pace in the way), best of three rounds.
 * 3. Rounds: a second and a third copy of the image (mounted into fresh repositories, so nothing
 *    of them is in the edge cache) are pulled 4 rounds in a row, by skopeo and by 8 parallel GETs:
 *    the rounds show what the edge-cache fill costs the pulls that pay for it.
 * 4. Pieces against one object: a blob pushed in Content-Range chunks (one stored piece each) and
 *    one of the same size pushed in one request, at 300 MB and at BENCH_BIG_GB (default 6; 0
 *    skips it), fetched by curl as first requests (each under a fresh repository, so from R2),
 *    with workerd's peak RSS during the GETs.
 * 5. The same store served by a bare R2 Worker (bench/bare-r2-worker.ts: workerd's floor, none of
 *    our code), then by `npm run dev` (`wrangler dev`, with wrangler's proxy Worker in a second
 *    workerd in front): the curl row again, and two pulls under `wrangler dev`, to show what the
 *    platform takes and what the proxy costs.
 *
 * Our registry runs as `npm start` runs it, with CACHE_MAX_BLOB_BYTES=0 (locally the Cache API is
 * one more copy on the same disk: filling it only costs). `--cache on` runs it with the deployed
 * setting instead, so that the rounds show what the edge-cache fill costs.
 *
 *   node bench/registry.ts [--mib 1024] [--layers 8] [--json]
 */
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Descriptor } from "../core/oci/manifest.ts";
import { anImage } from "../test/helpers/images/builder.ts";
import { writeImage, type WrittenImage } from "../test/helpers/images/layout.ts";
import { startPeerRegistry } from "../test/helpers/peer.ts";
import { run } from "../test/helpers/process.ts";
import * as skopeo from "../test/helpers/skopeo.ts";
import { startRegistry } from "../test/helpers/wrangler-dev.ts";
import { DEFAULTS } from "../worker/config.ts";
import { startBareR2Worker } from "./bare-r2-worker.ts";
import {
  generatedBlob,
  pushGenerated,
  serveTimed,
  type GeneratedBlob,
  type Served,
} from "../test/helpers/big-blobs.ts";
import { cpuSeconds, findWorkerd, rssMb } from "../test/helpers/workerd-proc.ts";

const { values } = parseArgs({
  options: {
    mib: { type: "string", default: "1024" },
    layers: { type: "string", default: "8" },
    json: { type: "boolean", default: false },
    // "off" (as `npm start` runs it): CACHE_MAX_BLOB_BYTES=0, no blob goes into the edge cache.
    // "on": the deployed setting, so the rounds show what filling the cache costs.
    cache: { type: "string", default: "off" },
  },
});
const layers = Number(values.layers);
const layerBytes = Math.floor((Number(values.mib) * 1024 * 1024) / layers);
const BIG_GB = Number(process.env.BENCH_BIG_GB ?? 6);
const ROUNDS = 4;
const SERVE_REPS = 5;
const CURL_REPS = 3;

const log = (msg: string): void => console.error(`[bench] ${msg}`);

async function seconds(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return (performance.now() - start) / 1000;
}

const work = await mkdtemp(join(tmpdir(), "2dfs-bench-registry-"));
const cleanups: (() => Promise<void>)[] = [async () => rm(work, { recursive: true, force: true })];
try {
  log(`building a ${values.mib} MiB image of ${layers} random layers...`);
  // gzip level 0: a real gzip layer, without spending a minute compressing what cannot shrink.
  const [image, ours, peer] = await Promise.all([
    writeImage(join(work, "image"), anImage().randomLayers(layers, layerBytes).compression("gzip", 0), "v1"),
    startRegistry({
      launcher: "npm start",
      persistDir: join(work, "state"),
      vars: values.cache === "on" ? { CACHE_MAX_BLOB_BYTES: String(DEFAULTS.cacheMaxBlobBytes) } : {},
    }),
    startPeerRegistry(),
  ]);
  cleanups.unshift(ours.stop, peer.stop);
  const workerd = findWorkerd(ours.port);
  const layerDescs = image.platforms
    .flatMap((p) => p.layers.map((l) => l.descriptor))
    .filter((d, i, all) => all.findIndex((x) => x.digest === d.digest) === i);

  /** Every layer blob at once, as a Go client asks (Accept-Encoding: gzip), each byte read and counted. */
  const fetchParallel = async (host: string, repo: string): Promise<void> => {
    await Promise.all(
      layerDescs.map(async (d) => {
        const res = await fetch(`http://${host}/v2/${repo}/blobs/${d.digest}`, {
          headers: { "Accept-Encoding": "gzip" },
        });
        if (res.status !== 200) throw new Error(`GET ${d.digest}: ${res.status}`);
        let n = 0;
        for await (const chunk of res.body!) n += (chunk as Uint8Array).byteLength;
        if (n !== d.size) throw new Error(`GET ${d.digest}: ${n} of ${d.size} bytes`);
      }),
    );
  };
  /** The layer blobs one after another, by curl. */
  const curlSequential = async (urlOf: (d: Descriptor) => string): Promise<void> => {
    for (const d of layerDescs) {
      const r = await run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", urlOf(d)]);
      if (r.stdout.trim() !== `200 ${d.size}`) throw new Error(`curl ${d.digest}: ${r.stdout}`);
    }
  };
  /** The best of CURL_REPS rounds of curlSequential: one round alone varied by 2x on this machine. */
  const curlBest = async (urlOf: (d: Descriptor) => string): Promise<number> => {
    const times: number[] = [];
    for (let i = 0; i < CURL_REPS; i++) times.push(await seconds(() => curlSequential(urlOf)));
    return Math.min(...times);
  };
  const pull = async (host: string, repo: string, i: number): Promise<number> => {
    const out = join(work, `pull-${i}`);
    const s = await seconds(() =>
      skopeo.copy(`docker://${host}/${repo}:v1`, `oci:${out}:v1`, { preserveDigests: true }),
    );
    await rm(out, { recursive: true, force: true });
    return s;
  };

  const main: Record<"ours" | "peer", { push: number; pulls: number[]; curl: number; pushCpu?: number }> = {
    ours: { push: 0, pulls: [], curl: 0 },
    peer: { push: 0, pulls: [], curl: 0 },
  };
  let pulls = 0;
  for (const [which, host] of [
    ["peer", peer.host],
    ["ours", ours.host],
  ] as const) {
    log(`${which}: skopeo push, two pulls, curl of the blobs one by one`);
    const cpu0 = which === "ours" ? cpuSeconds(workerd.worker) : 0;
    main[which].push = await seconds(() =>
      skopeo.copy(image.ref, `docker://${host}/bench/image:v1`, { preserveDigests: true }),
    );
    if (which === "ours") main.ours.pushCpu = cpuSeconds(workerd.worker) - cpu0;
    for (let i = 0; i < 2; i++) main[which].pulls.push(await pull(host, "bench/image", pulls++));
    main[which].curl = await curlBest((d) => blobUrl(host, "bench/image", d));
  }

  log("rounds on fresh copies: 4 skopeo pulls of one, 4 rounds of 8 parallel GETs of another");
  await mountCopy(ours.url, image, "bench/image", "bench/copy-pull");
  await mountCopy(ours.url, image, "bench/image", "bench/copy-get");
  const rounds = { pull: [] as number[], get: [] as number[] };
  for (let i = 0; i < ROUNDS; i++) rounds.pull.push(await pull(ours.host, "bench/copy-pull", pulls++));
  for (let i = 0; i < ROUNDS; i++) rounds.get.push(await seconds(() => fetchParallel(ours.host, "bench/copy-get")));
  const peerGet = Math.min(
    await seconds(() => fetchParallel(peer.host, "bench/image")),
    await seconds(() => fetchParallel(peer.host, "bench/image")),
  );

  log("pieces against one object: 300 MB in 4 chunks" + (BIG_GB > 0 ? `, ${BIG_GB} GB in 95 MB chunks` : ""));
  const sizes = [{ bytes: 300_000_000, chunk: 75_000_000 }];
  if (BIG_GB > 0) sizes.push({ bytes: BIG_GB * 1e9, chunk: 95_000_000 });
  const serving: {
    bytes: number;
    chunks: number;
    one: Served;
    pieces: Served;
    idleRssMb: number;
    peakRssMb: number;
  }[] = [];
  for (const { bytes, chunk } of sizes) {
    const one = generatedBlob(bytes);
    const chunked = generatedBlob(bytes);
    log(`${bytes / 1e6} MB: pushing in one request, then in ${Math.ceil(bytes / chunk)} chunks`);
    await pushGenerated(ours.url, "bench/big", one);
    await pushGenerated(ours.url, "bench/big", chunked, chunk);
    const idleRssMb = rssMb(workerd.worker);
    // Each GET under a fresh repository (a mount): a first request, served from R2 and not the
    // edge cache. The median of SERVE_REPS, alternating which goes first.
    const runs: { one: Served; pieces: Served }[] = [];
    for (let i = 0; i < SERVE_REPS; i++) {
      const repo = `bench/big-${bytes}-${i}`;
      await mount(ours.url, "bench/big", repo, one.digest);
      await mount(ours.url, "bench/big", repo, chunked.digest);
      const serve = (b: GeneratedBlob): Promise<Served> =>
        serveTimed(`${ours.url}/v2/${repo}/blobs/${b.digest}`, bytes, workerd.worker);
      if (i % 2 === 0) runs.push({ one: await serve(one), pieces: await serve(chunked) });
      else {
        const pieces = await serve(chunked);
        runs.push({ one: await serve(one), pieces });
      }
    }
    const median = (pick: (r: (typeof runs)[0]) => Served): Served =>
      runs.map(pick).sort((a, b) => a.seconds - b.seconds)[Math.floor(runs.length / 2)]!;
    serving.push({
      bytes,
      chunks: Math.ceil(bytes / chunk),
      one: median((r) => r.one),
      pieces: median((r) => r.pieces),
      idleRssMb,
      peakRssMb: Math.max(...runs.flatMap((r) => [r.one.peakRssMb, r.pieces.peakRssMb])),
    });
  }

  log("the same store served by a bare R2 Worker, then under `npm run dev` (wrangler dev)");
  await ours.stop();
  const bare = await startBareR2Worker(ours.persistDir);
  cleanups.unshift(bare.stop);
  const floorCurl = await curlBest((d) => bare.urlOf(d.digest));
  await bare.stop();
  const dev = await startRegistry({ persistDir: ours.persistDir, vars: { CACHE_MAX_BLOB_BYTES: "0" } });
  cleanups.unshift(dev.stop);
  const viaDev = {
    curl: await curlBest((d) => blobUrl(dev.host, "bench/image", d)),
    pulls: [await pull(dev.host, "bench/image", pulls++), await pull(dev.host, "bench/image", pulls++)],
  };
  await dev.stop();

  const best = (xs: number[]): number => Math.min(...xs);
  const ratios = {
    push: main.peer.push / main.ours.push,
    pull: best(main.peer.pulls) / best(main.ours.pulls),
    curl: main.peer.curl / main.ours.curl,
  };
  if (values.json) {
    console.log(
      JSON.stringify({
        bench: "registry",
        bytes: image.totalBytes,
        main,
        rounds,
        peerGet,
        serving,
        floorCurl,
        viaDev,
        ratios,
      }),
    );
  } else {
    const mb = image.totalBytes / 1e6;
    const s = (x: number): string => `${x.toFixed(2)} s`;
    console.log(
      `registry: ${mb.toFixed(0)} MB in ${layers} layers, edge cache ${values.cache}; ` +
        `ratios are distribution time / ours (goal in brackets)`,
    );
    console.log(
      `  skopeo push      ours ${s(main.ours.push)} (${(mb / main.ours.push).toFixed(1)} MB/s, workerd CPU ${main.ours.pushCpu!.toFixed(1)} s), distribution ${s(main.peer.push)}: ratio ${ratios.push.toFixed(2)} (>= 0.25)`,
    );
    console.log(
      `  skopeo pull      ours ${main.ours.pulls.map(s).join(", ")}, distribution ${main.peer.pulls.map(s).join(", ")}: best-of-two ratio ${ratios.pull.toFixed(2)} (>= 0.95)`,
    );
    console.log(
      `  curl 8 blobs one after another, best of ${CURL_REPS}: ours ${s(main.ours.curl)}, distribution ${s(main.peer.curl)}: ratio ${ratios.curl.toFixed(2)} (>= 1.0)`,
    );
    console.log(
      `  rounds, skopeo pull of a fresh copy: ${rounds.pull.map(s).join(", ")} (distribution best ${s(best(main.peer.pulls))})`,
    );
    console.log(
      `  rounds, 8 parallel GETs of a fresh copy: ${rounds.get.map(s).join(", ")} (distribution ${s(peerGet)})`,
    );
    console.log(
      `  the same blobs from a bare R2 Worker (workerd's floor): curl ${s(floorCurl)}, ratio ` +
        `${(main.peer.curl / floorCurl).toFixed(2)}; bare / ours: ${(floorCurl / main.ours.curl).toFixed(2)}`,
    );
    console.log(
      `  under \`npm run dev\` (wrangler dev, its proxy in front): curl ${s(viaDev.curl)}, ratio ` +
        `${(main.peer.curl / viaDev.curl).toFixed(2)}; pulls ${viaDev.pulls.map(s).join(", ")}, best-of-two ratio ` +
        `${(best(main.peer.pulls) / best(viaDev.pulls)).toFixed(2)}`,
    );
    for (const r of serving) {
      const f = (x: Served): string =>
        `first byte ${x.firstByteSeconds.toFixed(3)} s, ${x.seconds.toFixed(2)} s, ${x.mbPerSecond.toFixed(0)} MB/s`;
      // Past R2's single-put limit a blob sent in one request is two pieces: the fewest there can be.
      const oneIs = r.bytes > 5 * 1024 ** 3 - 5 * 1024 ** 2 ? "2 pieces" : "1 object";
      console.log(
        `  ${(r.bytes / 1e6).toFixed(0)} MB blob, first GETs (median of ${SERVE_REPS}); workerd RSS ` +
          `${r.idleRssMb.toFixed(0)} MB before, peak ${r.peakRssMb.toFixed(0)} MB during the GETs`,
      );
      console.log(`    one request (${oneIs}): ${f(r.one)}`);
      console.log(
        `    ${r.chunks} chunks (${r.chunks} pieces): ${f(r.pieces)}; time pieces / one: ` +
          `${(r.pieces.seconds / r.one.seconds).toFixed(2)} (<= 1.2)`,
      );
    }
  }
} finally {
  for (const cleanup of cleanups) await cleanup().catch((e: unknown) => console.error("cleanup:", e));
}

function blobUrl(host: string, repo: string, d: Descriptor): string {
  return `http://${host}/v2/${repo}/blobs/${d.digest}`;
}

async function mount(base: string, from: string, to: string, digest: string): Promise<void> {
  const res = await fetch(`${base}/v2/${to}/blobs/uploads/?mount=${digest}&from=${from}`, { method: "POST" });
  await res.body?.cancel();
  if (res.status !== 201) throw new Error(`mount ${digest}: ${res.status}`);
}

/** A copy of the image in another repository, by cross-repository mounts and manifest PUTs. */
async function mountCopy(base: string, image: WrittenImage, from: string, to: string): Promise<void> {
  const bytesOf = (d: Descriptor): Promise<Buffer> => readFile(join(image.dir, "blobs", "sha256", d.digest.slice(7)));
  for (const p of image.platforms) {
    for (const d of [p.config, ...p.layers.map((l) => l.descriptor)]) await mount(base, from, to, d.digest);
    await putManifest(base, to, p.manifest.digest, p.manifest.mediaType, await bytesOf(p.manifest.descriptor));
  }
  await putManifest(base, to, image.tag, image.mediaType, await bytesOf(image.descriptor));
}

async function putManifest(base: string, repo: string, ref: string, mediaType: string, body: Buffer): Promise<void> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${ref}`, {
    method: "PUT",
    headers: { "Content-Type": mediaType },
    body,
  });
  if (res.status !== 201) throw new Error(`PUT manifest ${ref}: ${res.status} ${await res.text()}`);
}
