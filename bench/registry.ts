/**
 * Registry benchmark: skopeo pushes a 1 GiB image of 8 random layers, then pulls it back, against
 * our registry under `wrangler dev` and against the distribution registry (Debian
 * `docker-registry`), in the same run on the same machine. skopeo's own pace (it digests and
 * writes every byte) caps its pull, so the registries' serving speed is also measured directly:
 * all layer blobs fetched at once over HTTP, twice (the second time an edge cache may answer).
 * Prints seconds and MB/s for each, and the ratios ours/peer (time: below 1 means we are faster).
 *
 *   node bench/registry.ts [--mib 1024] [--layers 8] [--json]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ociImage } from "../test/helpers/images.ts";
import { startPeerRegistry } from "../test/helpers/peer.ts";
import * as skopeo from "../test/helpers/skopeo.ts";
import { startRegistry } from "../test/helpers/wrangler-dev.ts";

const { values } = parseArgs({
  options: {
    mib: { type: "string", default: "1024" },
    layers: { type: "string", default: "8" },
    json: { type: "boolean", default: false },
  },
});
const layers = Number(values.layers);
const layerBytes = Math.floor((Number(values.mib) * 1024 * 1024) / layers);

interface Timing {
  seconds: number;
  mbPerSecond: number;
}

async function timed(bytes: number, work: () => Promise<unknown>): Promise<Timing> {
  const start = performance.now();
  await work();
  const seconds = (performance.now() - start) / 1000;
  return { seconds, mbPerSecond: bytes / 1e6 / seconds };
}

const work = await mkdtemp(join(tmpdir(), "2dfs-bench-registry-"));
const cleanups: (() => Promise<void>)[] = [async () => rm(work, { recursive: true, force: true })];
try {
  console.error(`building a ${values.mib} MiB image of ${layers} random layers...`);
  // gzip level 0: a real gzip layer, without spending a minute compressing what cannot shrink.
  const [image, ours, peer] = await Promise.all([
    ociImage().randomLayers(layers, layerBytes).compression("gzip", 0).tag("v1").write(join(work, "image")),
    startRegistry(),
    startPeerRegistry(),
  ]);
  cleanups.unshift(ours.stop, peer.stop);

  const targets = [
    { name: "ours (wrangler dev)", host: ours.host },
    { name: "distribution 2.8 (docker-registry)", host: peer.host },
  ];
  const layerDigests = [...new Set(image.platforms.flatMap((p) => p.layers.map((l) => l.descriptor.digest)))];
  const layerBytesTotal = image.platforms
    .flatMap((p) => p.layers.map((l) => l.descriptor))
    .filter((d, i, all) => all.findIndex((x) => x.digest === d.digest) === i)
    .reduce((n, d) => n + d.size, 0);
  /** Every layer blob at once, as a Go client asks (Accept-Encoding: gzip), each byte read and counted. */
  const fetchLayers = async (host: string): Promise<void> => {
    const sizes = await Promise.all(
      layerDigests.map(async (d) => {
        const res = await fetch(`http://${host}/v2/bench/image/blobs/${d}`, { headers: { "Accept-Encoding": "gzip" } });
        if (res.status !== 200) throw new Error(`GET ${d}: ${res.status}`);
        let n = 0;
        for await (const chunk of res.body!) n += (chunk as Uint8Array).byteLength;
        return n;
      }),
    );
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total !== layerBytesTotal) throw new Error(`fetched ${total} bytes, expected ${layerBytesTotal}`);
  };
  const results: { name: string; push: Timing; pull: Timing; fetch: Timing; fetchAgain: Timing }[] = [];
  for (const t of targets) {
    const ref = `docker://${t.host}/bench/image:v1`;
    console.error(`${t.name}: push...`);
    const push = await timed(image.totalBytes, () => skopeo.copy(image.ref, ref, { preserveDigests: true }));
    const out = join(work, `pull-${results.length}`);
    console.error(`${t.name}: pull...`);
    const pull = await timed(image.totalBytes, () => skopeo.copy(ref, `oci:${out}:v1`, { preserveDigests: true }));
    await rm(out, { recursive: true, force: true });
    const fetch = await timed(layerBytesTotal, () => fetchLayers(t.host));
    const fetchAgain = await timed(layerBytesTotal, () => fetchLayers(t.host));
    results.push({ name: t.name, push, pull, fetch, fetchAgain });
  }

  const [o, p] = results as [(typeof results)[0], (typeof results)[0]];
  const ratios = {
    push: o.push.seconds / p.push.seconds,
    pull: o.pull.seconds / p.pull.seconds,
    fetch: o.fetch.seconds / p.fetch.seconds,
    fetchAgain: o.fetchAgain.seconds / p.fetchAgain.seconds,
  };
  if (values.json) {
    console.log(
      JSON.stringify({ bench: "registry", bytes: image.totalBytes, layers, results, timeRatioOursOverPeer: ratios }),
    );
  } else {
    const fmt = (t: Timing): string =>
      `${t.seconds.toFixed(2).padStart(7)} s ${t.mbPerSecond.toFixed(1).padStart(8)} MB/s`;
    console.log(`registry: skopeo push and pull of ${(image.totalBytes / 1e6).toFixed(0)} MB in ${layers} layers`);
    console.log(
      `${"".padEnd(36)} ${"skopeo push".padEnd(22)} ${"skopeo pull".padEnd(22)} ${"blob fetch".padEnd(22)} blob fetch again`,
    );
    for (const r of results) {
      console.log(`${r.name.padEnd(36)} ${fmt(r.push)}   ${fmt(r.pull)}   ${fmt(r.fetch)}   ${fmt(r.fetchAgain)}`);
    }
    console.log(
      `time ours/peer: push ${ratios.push.toFixed(2)}x, pull ${ratios.pull.toFixed(2)}x, ` +
        `blob fetch ${ratios.fetch.toFixed(2)}x, again ${ratios.fetchAgain.toFixed(2)}x (below 1: ours is faster)`,
    );
  }
} finally {
  for (const cleanup of cleanups) await cleanup().catch((e: unknown) => console.error("cleanup:", e));
}
