/**
 * Pulls through a mirror (docs/upstreams.md): the distribution registry holds the images, our
 * registry (as `npm start` runs it) fronts it with UPSTREAMS, and skopeo pulls.
 *
 * 1. A 1 GiB image of 8 layers: the first pull through the mirror against a pull straight from
 *    distribution, then a second pull through the mirror (from its store).
 * 2. A 2DFS image whose field is 1 GiB in 16 allotments: the first pull of a partition holding a
 *    quarter of the field, in bytes and time, against the first pull of the whole field (`--all`).
 *
 *   node bench/upstream.ts   (BENCH_UPSTREAM_MIB, default 1024)
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { anImage } from "../test/helpers/images/builder.ts";
import { writeImage } from "../test/helpers/images/layout.ts";
import { overHttp, push } from "../test/helpers/images/push.ts";
import { startPeerRegistry } from "../test/helpers/peer.ts";
import { REPO_ROOT, run } from "../test/helpers/process.ts";
import { startRecordingProxy } from "../test/helpers/recording-proxy.ts";
import * as skopeo from "../test/helpers/skopeo.ts";
import { startRegistry } from "../test/helpers/wrangler-dev.ts";

const MIB = Number(process.env.BENCH_UPSTREAM_MIB ?? 1024);
const log = (msg: string): void => console.error(`[bench] ${msg}`);

const work = await mkdtemp(join(tmpdir(), "2dfs-bench-upstream-"));
const peer = await startPeerRegistry();
const proxy = await startRecordingProxy(peer.url);
const ours = await startRegistry({
  launcher: "npm start",
  vars: { UPSTREAMS: JSON.stringify({ "lab/": { url: proxy.url } }) },
});
const rows: [string, string][] = [];
try {
  log(`a ${MIB} MiB image of 8 layers, and a 2DFS image with a ${MIB} MiB field of 16 allotments, into distribution`);
  const plain = await writeImage(join(work, "plain"), anImage().randomLayers(8, (MIB * 1024 * 1024) / 8), "v1");
  // skopeo, as distribution takes no monolithic POST ?digest= (the builder's own push needs it).
  await skopeo.copy(plain.ref, `docker://${peer.host}/team/plain:v1`, { preserveDigests: true });
  const model = await writeImage(
    join(work, "model"),
    anImage()
      .randomLayers(1, 1024 * 1024)
      .grid(4, 4)
      .allotmentBytes((MIB * 1024 * 1024) / 16),
    "v1",
  );
  // A 2DFS image's allotments are named only inside its field, so skopeo would leave them behind:
  // it goes to our registry first, then to distribution with `2dfs-push copy`, allotments included.
  await push(overHttp(ours.url), "staging/model", model, "v1");
  await run(
    process.execPath,
    [
      join(REPO_ROOT, "builder-cli/bin/2dfs-push.ts"),
      "copy",
      `${ours.host}/staging/model:v1`,
      `${peer.host}/team/model:v1`,
    ],
    {
      env: {
        XDG_CACHE_HOME: join(work, "cache"),
        XDG_DATA_HOME: join(work, "data"),
        XDG_STATE_HOME: join(work, "state"),
      },
    },
  );

  let n = 0;
  const pull = async (ref: string): Promise<{ seconds: number; upstreamBytes: number }> => {
    const from = proxy.seen.length;
    const t = performance.now();
    await skopeo.copy(`docker://${ref}`, `oci:${join(work, `out-${n++}`)}:x`);
    const seconds = (performance.now() - t) / 1000;
    const fetched = proxy.seen
      .slice(from)
      .filter((r) => r.method === "GET" && r.url.includes("/blobs/") && r.range === undefined)
      .map((r) => r.url.split("/blobs/")[1]!);
    const sizes = new Map(
      [...plain.platforms, ...model.platforms].flatMap((p) => [
        ...p.layers.map((l): [string, number] => [l.digest, l.size]),
        ...p.allotments.map((a): [string, number] => [a.layer.digest, a.layer.size]),
      ]),
    );
    return { seconds, upstreamBytes: fetched.reduce((s, d) => s + (sizes.get(d) ?? 0), 0) };
  };
  const mb = (b: number): string => `${(b / 1e6).toFixed(0)} MB`;

  log("1. the plain image: straight from distribution, then through the mirror twice");
  const direct = await pull(`${peer.host}/team/plain:v1`);
  const first = await pull(`${ours.host}/lab/team/plain:v1`);
  const second = await pull(`${ours.host}/lab/team/plain:v1`);
  rows.push(
    ["plain image, straight from distribution", `${direct.seconds.toFixed(2)} s`],
    [
      "plain image, first pull through the mirror",
      `${first.seconds.toFixed(2)} s (${(first.seconds / direct.seconds).toFixed(2)}x direct), ${mb(first.upstreamBytes)} from upstream`,
    ],
    [
      "plain image, second pull through the mirror",
      `${second.seconds.toFixed(2)} s (${(second.seconds / direct.seconds).toFixed(2)}x direct), ${mb(second.upstreamBytes)} from upstream`,
    ],
  );

  log("2. a quarter of the field, then the whole field, each a first pull through the mirror");
  const quarter = await pull(`${ours.host}/lab/team/model:v1--0.0.0.3`);
  const all = await pull(`${ours.host}/lab/team/model:v1--all`);
  rows.push(
    [
      "partition of 1/4 of the field, first pull",
      `${quarter.seconds.toFixed(2)} s, ${mb(quarter.upstreamBytes)} from upstream`,
    ],
    [
      "the rest of the field (--all), first pull",
      `${all.seconds.toFixed(2)} s, ${mb(all.upstreamBytes)} from upstream (the quarter already stored)`,
    ],
    [
      "quarter / whole field",
      `bytes ${(quarter.upstreamBytes / (quarter.upstreamBytes + all.upstreamBytes)).toFixed(2)}, time ${(quarter.seconds / (quarter.seconds + all.seconds)).toFixed(2)}`,
    ],
  );
} finally {
  await ours.stop();
  await proxy.stop();
  await peer.stop();
  await rm(work, { recursive: true, force: true });
}
const width = Math.max(...rows.map(([w]) => w.length));
console.log(`\nupstream: skopeo pulls through the mirror (${MIB} MiB images)`);
for (const [w, v] of rows) console.log(`${w.padEnd(width)}  ${v}`);
