/**
 * Push benchmark: `2dfs-push build --push` of a ~500 MB model in 16 allotments of random,
 * weight-like bytes (stored uncompressed by `--compression auto`), then `push` of the unchanged
 * image, against our registry as `npm start` runs it and against the distribution registry (Debian
 * `docker-registry`), in the same run on the same machine. The CLI runs as a user runs it, with a
 * cold cache and store per registry. Prints blob bytes uploaded and seconds for each step, and
 * the ratios ours/peer (time: below 1 means we are faster).
 *
 *   node bench/push.ts [--mib 500] [--allotments 16] [--json]
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  cliSandbox,
  randomFile,
  type BuildPushOutput,
  type CliSandbox,
  type PushReport,
} from "../test/e2e/builder-cli.ts";
import { startPeerRegistry } from "../test/helpers/peer.ts";
import { startRegistry } from "../test/helpers/wrangler-dev.ts";

const { values } = parseArgs({
  options: {
    mib: { type: "string", default: "500" },
    allotments: { type: "string", default: "16" },
    json: { type: "boolean", default: false },
  },
});
const allotments = Number(values.allotments);
const fileBytes = Math.floor((Number(values.mib) * 1024 * 1024) / allotments);

interface Step {
  /** Wall-clock seconds of the CLI process, start-up included. */
  seconds: number;
  /** What the CLI's --json report says the push itself took. */
  pushSeconds: number;
  bytesUploaded: number;
  blobsSkipped: number;
  blobsTotal: number;
}

interface Result {
  name: string;
  buildAndPush: Step;
  pushUnchanged: Step;
}

/** A 2dfs.json of `allotments` files in a grid four columns wide. */
async function writeModel(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const entries = [];
  for (let i = 0; i < allotments; i++) {
    await randomFile(join(dir, `shard-${i}.bin`), fileBytes);
    entries.push({ src: `shard-${i}.bin`, dst: `/model/shard-${i}.bin`, row: Math.floor(i / 4), col: i % 4 });
  }
  await writeFile(join(dir, "2dfs.json"), JSON.stringify({ allotments: entries }));
}

async function timedJson<T>(sandbox: CliSandbox, args: string[], cwd: string): Promise<{ seconds: number; out: T }> {
  const start = performance.now();
  const out = await sandbox.json<T>(args, { cwd });
  return { seconds: (performance.now() - start) / 1000, out };
}

function step(seconds: number, r: PushReport): Step {
  return {
    seconds,
    pushSeconds: r.seconds,
    bytesUploaded: r.bytesUploaded,
    blobsSkipped: r.blobsSkipped,
    blobsTotal: r.blobsTotal,
  };
}

const cleanups: (() => Promise<void>)[] = [];
try {
  const model = await cliSandbox();
  cleanups.push(model.cleanup);
  console.error(`writing ${allotments} files of ${(fileBytes / 1e6).toFixed(1)} MB of random bytes...`);
  const src = join(model.dir, "model");
  const [ours, peer] = await Promise.all([
    startRegistry({ launcher: "npm start" }),
    startPeerRegistry(),
    writeModel(src),
  ]);
  cleanups.unshift(ours.stop, peer.stop);

  const targets = [
    { name: "ours (npm start)", host: ours.host },
    { name: "distribution 2.8 (docker-registry)", host: peer.host },
  ];
  const results: Result[] = [];
  for (const t of targets) {
    // A cold cache and store for each registry, so both builds do the same work.
    const sandbox = await cliSandbox();
    cleanups.unshift(sandbox.cleanup);
    const ref = `${t.host}/bench/model:v1`;
    console.error(`${t.name}: build --push...`);
    const first = await timedJson<BuildPushOutput>(sandbox, ["build", "scratch", ref, "--push"], src);
    console.error(`${t.name}: push unchanged...`);
    const again = await timedJson<PushReport>(sandbox, ["push", ref], src);
    if (again.out.bytesUploaded !== 0)
      throw new Error(`${t.name}: the unchanged push uploaded ${again.out.bytesUploaded} bytes`);
    results.push({
      name: t.name,
      buildAndPush: step(first.seconds, first.out.push),
      pushUnchanged: step(again.seconds, again.out),
    });
  }

  const [o, p] = results as [Result, Result];
  const ratios = {
    buildAndPushTime: o.buildAndPush.seconds / p.buildAndPush.seconds,
    firstPushTime: o.buildAndPush.pushSeconds / p.buildAndPush.pushSeconds,
    unchangedPushTime: o.pushUnchanged.seconds / p.pushUnchanged.seconds,
  };
  if (values.json) {
    console.log(JSON.stringify({ mib: Number(values.mib), allotments, results, ratios }, null, 2));
  } else {
    const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;
    const s = (n: number): string => `${n.toFixed(2)} s`;
    console.log(`push benchmark: ${values.mib} MiB in ${allotments} allotments of random bytes`);
    for (const r of results) {
      const b = r.buildAndPush;
      const u = r.pushUnchanged;
      console.log(
        `${r.name}\n` +
          `  build --push      ${s(b.seconds)} (push ${s(b.pushSeconds)}, ${(b.bytesUploaded / 1e6 / b.pushSeconds).toFixed(0)} MB/s), uploaded ${mb(b.bytesUploaded)}, ${b.blobsTotal} blobs\n` +
          `  push unchanged    ${s(u.seconds)} (push ${s(u.pushSeconds)}), uploaded ${mb(u.bytesUploaded)}, ${u.blobsSkipped}/${u.blobsTotal} blobs skipped`,
      );
    }
    console.log(
      `ours/peer: build --push ${ratios.buildAndPushTime.toFixed(2)}x, ` +
        `first push ${ratios.firstPushTime.toFixed(2)}x, unchanged push ${ratios.unchangedPushTime.toFixed(2)}x (time; below 1 is faster)`,
    );
  }
} finally {
  for (const c of cleanups) await c().catch(() => {});
}
