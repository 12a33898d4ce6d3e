/**
 * The local store as a user manages it: `images` lists what builds stored, `rm` removes images,
 * `prune` frees exactly what no remaining image references (counting a file once however many
 * links it has), `du` adds it up, and a push of an image that was never built says how to build
 * it. The store lock makes prune wait for a build in progress.
 */
import { spawn } from "node:child_process";
import { lstat, readdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { formatBytes } from "../../core/format.ts";
import type { ImageListing, PruneResult } from "../../builder-cli/src/cli/commands/store.ts";
import type { DiskUsage } from "../../builder-cli/src/store/disk-usage.ts";
import { withSharedLock } from "../../builder-cli/src/store/lock.ts";
import { writeHfModel, type HfModel } from "../helpers/hf-model.ts";
import { CLI, sandbox, type BuildOutput, type Sandbox } from "./builder-helpers.ts";

const REPO = "localhost:5000/ml/llm";
/** About 3 MB: 12 small layers in 4 shards. */
const SHAPE = { hidden: 128, intermediate: 256, vocab: 2048 };

const boxes: Sandbox[] = [];
afterEach(async () => {
  await Promise.all(boxes.splice(0).map((b) => b.cleanup()));
});

async function setup(): Promise<{ s: Sandbox; model: HfModel }> {
  const s = await sandbox();
  boxes.push(s);
  const model = await writeHfModel(path.join(s.dir, "llm"), { shape: SHAPE });
  expect(s.run(["init", "llm"]).status).toBe(0);
  return { s, model };
}

/** Rewrites a shard's tensor bytes (its header stays), as a fine-tune that changed those layers would. */
async function retouch(model: HfModel, shard: number, byte: number): Promise<void> {
  const file = path.join(model.dir, model.shards[shard]!.file);
  const bytes = await readFile(file);
  bytes[bytes.length - 1] = byte;
  await writeFile(file, bytes);
}

/** Every blob digest an image in the store references, with its size: manifests, configs, fields, allotments. */
async function blobsOf(built: BuildOutput): Promise<Map<string, number>> {
  const dir = built.layout;
  const size = async (d: string): Promise<number> => (await stat(path.join(dir, "blobs", "sha256", d.slice(7)))).size;
  const json = async (d: string): Promise<Record<string, unknown>> =>
    JSON.parse(await readFile(path.join(dir, "blobs", "sha256", d.slice(7)), "utf8")) as Record<string, unknown>;
  const out = new Map<string, number>();
  out.set(built.digest, await size(built.digest));
  const index = (await json(built.digest)) as { manifests: { digest: string }[] };
  for (const m of index.manifests) {
    out.set(m.digest, await size(m.digest));
    const manifest = (await json(m.digest)) as { config: { digest: string }; layers: { digest: string }[] };
    for (const d of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) out.set(d, await size(d));
  }
  for (const a of built.allotments) out.set(a.digest, a.size);
  return out;
}

describe("the local store", () => {
  it("images lists each image's reference, digest, platforms, field, size, shared bytes and last use", async () => {
    const { s, model } = await setup();
    const v1 = s.json<BuildOutput>(["build", "-f", "llm/2dfs.json", "scratch", `${REPO}:v1`]);
    await retouch(model, 1, 7);
    const before = Date.now();
    const v2 = s.json<BuildOutput>(["build", "-f", "llm/2dfs.json", "scratch", `${REPO}:v2`]);
    const listed = s.json<{ store: string; images: ImageListing[] }>(["images"]);
    expect(listed.store).toBe(path.join(s.dir, "data/2dfs-push/images"));
    const [b1, b2] = [await blobsOf(v1), await blobsOf(v2)];
    const sum = (m: Map<string, number>, keep: (d: string) => boolean = () => true): number =>
      [...m].filter(([d]) => keep(d)).reduce((n, [, x]) => n + x, 0);
    // What a listing of `built` says, its blobs `mine`, the other image's `theirs`.
    const listing = (tag: string, built: BuildOutput, mine: Map<string, number>, theirs: Map<string, number>) => ({
      reference: `${REPO}:${tag}`,
      digest: built.digest,
      platforms: ["linux/amd64"],
      field: { rows: 1, cols: 5, allotments: 5 },
      bytes: sum(mine),
      sharedBytes: sum(mine, (d) => theirs.has(d)),
      lastUsed: undefined,
    });
    expect(listed.images.map((i) => ({ ...i, lastUsed: undefined }))).toEqual([
      listing("v1", v1, b1, b2),
      listing("v2", v2, b2, b1),
    ]);
    // Three shards and the shared files are the same in both: they share all but one shard and their manifests.
    expect(listed.images[0]!.sharedBytes).toBeGreaterThan(0);
    expect(listed.images[0]!.sharedBytes).toBeLessThan(listed.images[0]!.bytes);
    expect(Date.parse(listed.images[1]!.lastUsed)).toBeGreaterThanOrEqual(before - 1000);

    const human = s.run(["images"]);
    expect(human.stdout.split("\n")[0]).toMatch(/^REFERENCE\s+DIGEST\s+PLATFORMS\s+FIELD\s+SIZE\s+SHARED\s+LAST USED$/);
    expect(human.stdout).toMatch(
      new RegExp(
        `^${REPO}:v2\\s+sha256:${v2.digest.slice(7, 19)}…\\s+linux/amd64\\s+1x5, 5 allotments\\s+[\\d.]+ MB\\s+[\\d.]+ MB\\s+just now$`,
        "m",
      ),
    );
  });

  it("after 3 builds and rm of 2, prune frees exactly the bytes only those 2 held; --dry-run removes nothing", async () => {
    const { s, model } = await setup();
    const v1 = s.json<BuildOutput>(["build", "-f", "llm/2dfs.json", "scratch", `${REPO}:v1`]);
    await retouch(model, 1, 1);
    const v2 = s.json<BuildOutput>(["build", "-f", "llm/2dfs.json", "scratch", `${REPO}:v2`]);
    await retouch(model, 2, 2);
    const v3 = s.json<BuildOutput>(["build", "-f", "llm/2dfs.json", "scratch", `${REPO}:v3`]);
    const kept = await blobsOf(v3);
    const only = new Map([...(await blobsOf(v1)), ...(await blobsOf(v2))].filter(([d]) => !kept.has(d)));
    const expected = [...only.values()].reduce((n, x) => n + x, 0);
    // Two shards (the first v1's alone, the second v1's and v2's) and three images' worth of JSON.
    expect(only.size).toBe(2 + 2 * 3);

    const du = s.json<DiskUsage & { reclaimable: number }>(["du"]);
    expect(du.reclaimable).toBe(0);
    const rm = s.run(["rm", `${REPO}:v1`, `${REPO}:v2`]);
    expect(rm.status, rm.stderr).toBe(0);
    expect(rm.stdout).toBe(
      `removed ${REPO}:v1\nremoved ${REPO}:v2\n2dfs-push prune frees ${formatBytes(expected)} that no image references now\n`,
    );

    const files = async (): Promise<string[]> => (await readdir(s.dir, { recursive: true })).sort();
    const listing = await files();
    const dry = s.json<PruneResult>(["prune", "--dry-run"]);
    expect(dry).toEqual({ dryRun: true, bytesFreed: expected, blobs: only.size + 2, cacheEntries: 2, repositories: 0 });
    expect(await files()).toEqual(listing);

    const pruned = s.json<PruneResult>(["prune"]);
    expect(pruned).toEqual({ ...dry, dryRun: false });
    // Each shard is a file in the layout and a hard link in the cache: both go, counted once.
    for (const d of only.keys()) {
      await expect(lstat(path.join(v1.layout, "blobs", "sha256", d.slice(7)))).rejects.toThrow(/ENOENT/);
    }
    const after = s.json<DiskUsage & { reclaimable: number }>(["du"]);
    expect(du.bytes - after.bytes).toBe(expected);
    expect(after.reclaimable).toBe(0);
    expect(s.json<{ images: ImageListing[] }>(["images"]).images.map((i) => i.reference)).toEqual([`${REPO}:v3`]);
    // What is left is whole: the kept image exports, and a rebuild of it is all cache hits.
    expect(s.run(["export", `${REPO}:v3--main`, path.join(s.dir, "exported")]).status).toBe(0);
    expect(s.json<BuildOutput>(["build", "-f", "llm/2dfs.json", "scratch", `${REPO}:v3`]).cached).toBe(5);
    expect(s.json<PruneResult>(["prune"]).bytesFreed).toBe(0);
  });

  it("rm of a name that is not stored removes nothing and exits 2", async () => {
    const { s } = await setup();
    s.json(["build", "-f", "llm/2dfs.json", "scratch", `${REPO}:v1`]);
    const r = s.run(["rm", `${REPO}:v1`, `${REPO}:nope`]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      `2dfs-push: not in the local image store ${path.join(s.dir, "data/2dfs-push/images")}: ${REPO}:nope (\`2dfs-push images\` lists it)\n`,
    );
    expect(s.json<{ images: ImageListing[] }>(["images"]).images).toHaveLength(1);
  });

  it("push of an image that was never built says it is not in the store, and how to build it", async () => {
    const { s } = await setup();
    const store = path.join(s.dir, "data/2dfs-push/images");
    let r = s.run(["push", "127.0.0.1:5000/x/y"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      `2dfs-push: 127.0.0.1:5000/x/y:latest is not in the local image store ${store}; build it first: ` +
        "2dfs-push build [-f 2dfs.json] BASE 127.0.0.1:5000/x/y:latest (`2dfs-push images` lists the store)\n",
    );
    s.json(["build", "-f", "llm/2dfs.json", "scratch", `${REPO}:v1`]);
    r = s.run(["push", `${REPO}:v2`]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      `${REPO}:v2 is not in the local image store ${store} (it has ${REPO} tagged v1); build it first`,
    );
  });

  it("prune waits while a build holds the store, then runs", async () => {
    const { s } = await setup();
    s.json(["build", "-f", "llm/2dfs.json", "scratch", `${REPO}:v1`]);
    s.run(["rm", `${REPO}:v1`]);
    // This test process holds the lock as a running build does.
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    const lockDir = path.join(s.dir, "cache/2dfs-push/locks/shared");
    const holding = withSharedLock(
      { cacheRoot: path.join(s.dir, "cache/2dfs-push"), command: "a build in the test" },
      () => held,
    );
    while ((await readdir(lockDir).catch(() => [])).length === 0) await sleep(10);

    const prune = spawn("node", [CLI, "prune", "--json"], { env: s.env, cwd: s.dir });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    prune.stdout.on("data", (b: Buffer) => out.push(b));
    prune.stderr.on("data", (b: Buffer) => err.push(b));
    const exited = new Promise<number | null>((r) => prune.on("close", r));
    for (let i = 0; i < 200 && !Buffer.concat(err).toString().includes("waiting"); i++) await sleep(25);
    expect(Buffer.concat(err).toString()).toMatch(
      /^waiting for a build in the test \(pid \d+, since .+\) to finish\n$/,
    );
    await sleep(500);
    expect(prune.exitCode).toBeNull();
    expect(await readdir(lockDir)).toHaveLength(1);

    release();
    await holding;
    expect(await exited).toBe(0);
    expect((JSON.parse(Buffer.concat(out).toString()) as PruneResult).bytesFreed).toBeGreaterThan(0);
    expect(await readdir(path.join(s.dir, "cache/2dfs-push/locks"))).toEqual(["shared"]);
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
