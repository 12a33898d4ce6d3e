/**
 * What signed partitions cost (docs/signing.md), against the registry as users run it (`npm start`)
 * with its own signer configured, on a field of 1,000 allotments (25 x 40):
 *
 * 1. Signing a partition. In process: the two signatures (simple signing and bundle) of one
 *    manifest, against computing the partition it signs with core's partitionImage. As a user runs
 *    it: `2dfs-push sign REF--label` (index and platform manifest, both formats, checked against
 *    what the registry serves), against `2dfs-push --version`, the same Node start-up doing nothing.
 * 2. `2dfs-push verify` of the whole field (1,000 allotments recomputed, each sized by a ranged GET)
 *    and of a 10-allotment rectangle, against a plain manifest GET, and against `skopeo inspect`,
 *    a stock client reading one manifest.
 * 3. The registry's signing CPU per request, from /proc: the referrers GET of a partition the
 *    registry signs then (cold), the same again (remembered), and the referrers GET of a pushed
 *    image, which nothing signs (the baseline).
 *
 *   node bench/signing.ts   (BENCH_SIGN_REPS: repetitions, default 10)
 */
import { performance } from "node:perf_hooks";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { MediaType } from "../core/oci/media-types.ts";
import { generateKeyPair, importPrivateKey } from "../core/sign/ecdsa.ts";
import { signBundle, signSimple } from "../core/sign/sign.ts";
import { partitionImage, selectionOf } from "../core/tdfs/partition-image.ts";
import { parseImageRef } from "../builder-cli/src/registry/ref.ts";
import { registryPartitionSource } from "../builder-cli/src/sign/sources.ts";
import { RegistrySource } from "../builder-cli/src/store/registry-source.ts";
import { cliSandbox } from "../test/e2e/builder-cli.ts";
import { run } from "../test/helpers/process.ts";
import { startRegistry } from "../test/helpers/wrangler-dev.ts";
import { pushFieldImage } from "./field-image.ts";
import { cpuDuring, findWorkerd } from "../test/helpers/workerd-proc.ts";

const REPS = Number(process.env.BENCH_SIGN_REPS ?? 10);
const ROWS = 25;
const COLS = 40;
const REPO = "bench/signed";
const ACCEPT = [MediaType.OciIndex, MediaType.OciManifest].join(", ");
const BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json";
const log = (msg: string): void => console.error(`[bench] ${msg}`);

const cli = await cliSandbox();
const keys = async (name: string) => {
  const dir = join(cli.dir, name);
  const r = await cli.run(["key", "generate", "--output", dir, "--passphrase-stdin"], { input: name });
  if (r.code !== 0) throw new Error(r.stderr);
  return { key: join(dir, "cosign.key"), pub: join(dir, "cosign.pub"), passphrase: name };
};
const owner = await keys("owner");
const signer = await keys("registry");
const registry = await startRegistry({
  launcher: "npm start",
  vars: {
    PARTITION_SIGNING_KEY: await readFile(signer.key, "utf8"),
    PARTITION_SIGNING_KEY_PASSPHRASE: signer.passphrase,
    PARTITION_TRUSTED_KEYS: await readFile(owner.pub, "utf8"),
  },
});
const rows: [string, string][] = [];
try {
  const pid = findWorkerd(registry.port).worker;
  log(`a field of ${ROWS * COLS} allotments, signed by its owner`);
  await pushFieldImage(registry.url, REPO, ROWS, COLS);
  const ref = (tag: string): string => `${registry.host}/${REPO}:${tag}`;
  const asOwner = { env: { TDFS_KEY_PASSPHRASE: owner.passphrase } };
  const signed = await cli.run(["sign", ref("v1"), "--key", owner.key], asOwner);
  if (signed.code !== 0) throw new Error(signed.stderr);

  // 1. Signing, in process and as a command.
  const source = new RegistrySource(parseImageRef(ref("v1")));
  const root = await source.manifest("v1");
  const partitionSource = registryPartitionSource(source);
  const key = await importPrivateKey((await generateKeyPair()).pkcs8);
  let computeMs = 0;
  let signMs = 0;
  for (let i = 0; i < REPS; i++) {
    let t = performance.now();
    const part = await partitionImage(root, selectionOf(`${i}.0.${i}.${COLS - 1}`, root), partitionSource);
    computeMs += performance.now() - t;
    if (part.kind !== "partition") throw new Error("the bench's rectangle selected nothing");
    const target = { identity: ref(`v1--r${i}`), subject: { ...part.root, size: part.root.size } };
    t = performance.now();
    await Promise.all([signSimple(key, target), signBundle(key, target, { created: new Date() })]);
    signMs += performance.now() - t;
  }
  rows.push([
    "in process: both signatures of one manifest",
    `${(signMs / REPS).toFixed(2)} ms, ${(signMs / computeMs).toFixed(3)}x computing its partition from the registry (${(computeMs / REPS).toFixed(1)} ms, 40 allotments)`,
  ]);
  let signCommand = 0;
  let startup = 0;
  for (let i = 0; i < REPS; i++) {
    let t = performance.now();
    const r = await cli.run(["sign", ref(`v1--${i}.0.${i}.9`), "--key", owner.key], asOwner);
    signCommand += performance.now() - t;
    if (r.code !== 0) throw new Error(r.stderr);
    t = performance.now();
    await cli.run(["--version"]);
    startup += performance.now() - t;
  }
  rows.push([
    "2dfs-push sign REF--label (index + platform manifest, both formats)",
    `${(signCommand / REPS).toFixed(0)} ms, ${(signCommand / startup).toFixed(2)}x 2dfs-push --version (${(startup / REPS).toFixed(0)} ms)`,
  ]);

  // 2. verify against a plain manifest GET and skopeo inspect.
  let getMs = 0;
  let inspectMs = 0;
  for (let i = 0; i < REPS; i++) {
    let t = performance.now();
    await (await fetch(`${registry.url}/v2/${REPO}/manifests/v1`, { headers: { Accept: ACCEPT } })).arrayBuffer();
    getMs += performance.now() - t;
    t = performance.now();
    await run("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${ref("v1")}`]);
    inspectMs += performance.now() - t;
  }
  for (const [label, what] of [
    ["all", `all ${ROWS * COLS} allotments`],
    ["3.0.3.9", "a rectangle of 10 allotments"],
  ] as const) {
    let verifyMs = 0;
    for (let i = 0; i < REPS; i++) {
      const t = performance.now();
      const r = await cli.run(["verify", ref(`v1--${label}`), "--key", owner.pub]);
      verifyMs += performance.now() - t;
      if (r.code !== 0) throw new Error(`verify ${label}: ${r.stdout}${r.stderr}`);
    }
    rows.push([
      `2dfs-push verify of ${what}`,
      `${(verifyMs / REPS).toFixed(0)} ms: ${(verifyMs / getMs).toFixed(0)}x a plain manifest GET (${(getMs / REPS).toFixed(1)} ms), ${(verifyMs / inspectMs).toFixed(2)}x skopeo inspect (${(inspectMs / REPS).toFixed(0)} ms)`,
    ]);
  }

  // 3. Registry-side signing CPU per request.
  const digests: string[] = [];
  for (let i = 0; i < REPS; i++) {
    const res = await fetch(`${registry.url}/v2/${REPO}/manifests/v1--${i}.20.${i}.39`, {
      method: "HEAD",
      headers: { Accept: ACCEPT },
    });
    digests.push(res.headers.get("docker-content-digest")!);
  }
  const referrers = async (digest: string): Promise<number> => {
    const res = await fetch(
      `${registry.url}/v2/${REPO}/referrers/${digest}?artifactType=${encodeURIComponent(BUNDLE)}`,
    );
    return ((await res.json()) as { manifests: unknown[] }).manifests.length;
  };
  const cold = await cpuDuring(pid, async () => {
    for (const d of digests) if ((await referrers(d)) !== 2) throw new Error(`the registry did not sign ${d}`);
  });
  const warm = await cpuDuring(pid, async () => {
    for (const d of digests) await referrers(d);
  });
  const rootDigest = root.digest;
  const plain = await cpuDuring(pid, async () => {
    for (let i = 0; i < REPS; i++) await referrers(rootDigest);
  });
  const ms = (s: number): string => `${((s * 1000) / REPS).toFixed(2)} ms`;
  rows.push(
    [
      "registry: referrers GET that signs a partition (cold)",
      `${ms(cold.cpu)} CPU, ${(cold.cpu / Math.max(plain.cpu, 0.01)).toFixed(1)}x the unsigned baseline`,
    ],
    ["registry: the same again (remembered in KV)", `${ms(warm.cpu)} CPU`],
    ["registry: referrers GET of a pushed image (baseline)", `${ms(plain.cpu)} CPU`],
  );
} finally {
  await registry.stop();
  await cli.cleanup();
}
const width = Math.max(...rows.map(([w]) => w.length));
console.log(`\nsigned partitions (${REPS} repetitions each; workerd CPU read from /proc in 10 ms ticks)`);
for (const [w, v] of rows) console.log(`${w.padEnd(width)}  ${v}`);
