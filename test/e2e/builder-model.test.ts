/**
 * From a model directory to a fleet, as an ML engineer goes: a Hugging Face checkout written by
 * the test (4 safetensors shards of a 12-layer transformer with real headers, the index, config
 * and tokenizer files, an `int8/` variant; about 36 MB), `2dfs-push init --stages 3`, then
 * `build --push` to our registry (`wrangler dev`), and a private containerd pulling one
 * pipeline stage: only the shards that hold its layers arrive.
 *
 * Then what happens around it:
 *   - the local store is cleaned while a build is running: prune waits for it, frees exactly what
 *     only the removed images held, and the build pushes an intact image;
 *   - a fresh machine (another HOME, empty cache and store) pushing the same model into another
 *     repository sends no byte of it: the registry is asked to mount each blob by digest, and
 *     does (the requests are recorded by a proxy in front of it, since wrangler's log drops query
 *     strings);
 *   - with auth on, a user who may not pull the first repository gets every mount refused,
 *     uploads the bytes instead, and can tell nothing of the first repository from the answers.
 */
import { createHash } from "node:crypto";
import { cp, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InitResult } from "../../builder-cli/src/cli/commands/init.ts";
import type { ImageListing, PruneResult } from "../../builder-cli/src/cli/commands/store.ts";
import { startContainerd, type Containerd } from "../helpers/containerd.ts";
import { writeHfModel, type HfModel } from "../helpers/hf-model.ts";
import { REPO_ROOT, run } from "../helpers/process.ts";
import { startRecordingProxy, type RecordingProxy, type SeenRequest } from "../helpers/recording-proxy.ts";
import { logMark, requestsSince } from "../helpers/request-log.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";
import {
  cliSandbox,
  fetchBlobDigest,
  imageBlobDigests,
  type BuildPushOutput,
  type BuildResult,
  type CliSandbox,
  type PushReport,
} from "./builder-cli.ts";

const PLATFORM = "linux/amd64";

/**
 * Every blob of a built image, with its size: the index and its manifests, what they name, and the
 * allotments the field names.
 */
async function blobsOf(build: BuildResult): Promise<Map<string, number>> {
  const blob = (d: string): string => join(build.layout, "blobs", "sha256", d.slice(7));
  const index = JSON.parse(await readFile(blob(build.digest), "utf8")) as { manifests: { digest: string }[] };
  const out = new Map<string, number>();
  for (const d of [
    build.digest,
    ...index.manifests.map((m) => m.digest),
    ...(await imageBlobDigests(build.layout, build.digest)),
  ]) {
    out.set(d, (await stat(blob(d))).size);
  }
  for (const a of build.allotments) out.set(a.digest, a.size);
  return out;
}

/** The shard files `model.safetensors.index.json` maps the tensors of layers `from`..`to` to. */
async function shardsOfLayers(dir: string, from: number, to: number): Promise<string[]> {
  const index = JSON.parse(await readFile(join(dir, "model.safetensors.index.json"), "utf8")) as {
    weight_map: Record<string, string>;
  };
  const files = Object.entries(index.weight_map)
    .filter(([name]) => {
      const layer = /^model\.layers\.(\d+)\./.exec(name)?.[1];
      return layer !== undefined && Number(layer) >= from && Number(layer) <= to;
    })
    .map(([, file]) => file);
  return [...new Set(files)].sort();
}

/** Rewrites the last tensor byte of a shard, as a fine-tune of its layers would. */
async function retouch(model: HfModel, shard: number): Promise<void> {
  const file = join(model.dir, model.shards[shard]!.file);
  const bytes = await readFile(file);
  bytes[bytes.length - 1] = (bytes[bytes.length - 1]! + 1) % 256;
  await writeFile(file, bytes);
}

describe("a Hugging Face model: init --stages 3, build --push, containerd pulls one stage", () => {
  let registry: Registry;
  let containerd: Containerd;
  let laptop: CliSandbox;
  let model: HfModel;
  let init: InitResult;
  let pushed: BuildPushOutput;
  const ref = (repo: string, tag = "v1"): string => `${registry.host}/${repo}:${tag}`;

  beforeAll(async () => {
    laptop = await cliSandbox();
    [registry, containerd, model] = await Promise.all([
      startRegistry(),
      startContainerd(),
      writeHfModel(join(laptop.dir, "llm"), { variants: { int8: "I8" } }),
    ]);
    const human = await laptop.run(["init", "llm", "--stages", "3"]);
    expect(human.code, human.stderr).toBe(0);
    console.log(`init --stages 3 printed:\n${human.stdout}`);
    init = await laptop.json<InitResult>(["init", "llm", "--stages", "3", "--force"]);
    pushed = await laptop.json<BuildPushOutput>([
      "build",
      "-f",
      "llm/2dfs.json",
      "scratch",
      ref("e2e/model"),
      "--push",
    ]);
  });

  afterAll(async () => {
    await Promise.all([registry?.stop(), containerd?.stop(), laptop?.cleanup()]);
  });

  it("pushes the field init planned: shards in columns, the shared files at (0,0), int8 a row", () => {
    expect(pushed.push.digest).toBe(pushed.build.digest);
    expect(pushed.build.allotments.map((a) => [a.row, a.col])).toEqual(init.cells.map((c) => [c.row, c.col]));
    expect(init.spec.partitions).toMatchObject({
      stage0: "0.0.0.2",
      stage1: "0.0.0.0--0.2.0.3",
      stage2: "0.0.0.0--0.3.0.4",
    });
    const total = init.cells.reduce((n, c) => n + c.size, 0);
    expect(total).toBeGreaterThan(35_000_000);
  });

  it("containerd pulls model:v1--stage1: the shared files and exactly the shards holding layers 4-7 arrive", async () => {
    const stage = `${ref("e2e/model")}--stage1`;
    await containerd.pull(stage, { platform: PLATFORM });
    const shards = await shardsOfLayers(model.dir, 4, 7);
    expect(shards).toEqual([model.shards[1]!.file, model.shards[2]!.file]);
    const want = [...model.shared, ...shards].map((f) => `model/${f}`).sort();
    const root = await containerd.rootfs(stage, PLATFORM);
    const files = (await readdir(root, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
      .sort();
    expect(files).toEqual(want);
    for (const f of shards) expect(await readFile(join(root, "model", f))).toEqual(await readFile(join(model.dir, f)));

    // No other shard reached the device: not as a file, and not as a blob in its content store.
    const content = new Set<string>(await containerd.contentDigests());
    const allotmentOf = (file: string): string => {
      const cell = init.cells.find((c) => c.files.length === 1 && c.files[0]!.path === file)!;
      return pushed.build.allotments.find((a) => a.row === cell.row && a.col === cell.col)!.digest;
    };
    for (const s of model.shards) expect(content.has(allotmentOf(s.file)), s.file).toBe(shards.includes(s.file));
    const stage1 = init.partitions.find((p) => p.name === "stage1")!;
    console.log(
      `stage1 pulls ${stage1.bytes} of ${stage1.stage!.rowBytes} bytes (layers ${stage1.stage!.layers.join("-")})`,
    );
  });

  it("prune, while a build runs, waits for it and frees exactly what only the removed images held; the build pushes intact", async () => {
    const machine = await cliSandbox();
    try {
      const ft = await writeHfModel(join(machine.dir, "ft"), {});
      expect((await machine.run(["init", "ft"])).code).toBe(0);
      const build = (tag: string) =>
        machine.json<BuildResult>(["build", "-f", "ft/2dfs.json", "scratch", ref("e2e/ft", tag)]);
      const v1 = await build("v1");
      await retouch(ft, 1);
      const v2 = await build("v2");
      await retouch(ft, 2);
      const v3 = await build("v3");
      const removed = new Map([...(await blobsOf(v1)), ...(await blobsOf(v2))]);
      const kept = await blobsOf(v3);
      expect((await machine.run(["rm", ref("e2e/ft", "v1"), ref("e2e/ft", "v2")])).code).toBe(0);

      // A fourth build, pushed: it holds the store from its start to the end of its push.
      await retouch(ft, 3);
      const locks = join(machine.dir, "cache", "2dfs-push", "locks", "shared");
      const building = machine.run(["build", "-f", "ft/2dfs.json", "scratch", ref("e2e/ft", "v4"), "--push", "--json"]);
      while ((await readdir(locks).catch(() => [])).length === 0) await new Promise((r) => setTimeout(r, 10));
      const pruning = machine.run(["prune", "--json"]);
      const [b, p] = await Promise.all([building, pruning]);
      expect(b.code, b.stderr).toBe(0);
      expect(p.code, p.stderr).toBe(0);
      expect(p.stderr).toMatch(/^waiting for 2dfs-push build \S+e2e\/ft:v4 --push \(pid \d+, since .+\) to finish\n$/);

      // What only v1 and v2 held: the two shards they had before the fine-tunes, and their own manifests.
      const v4 = JSON.parse(b.stdout) as BuildPushOutput;
      const still = new Map([...kept, ...(await blobsOf(v4.build))]);
      const only = [...removed].filter(([d]) => !still.has(d));
      expect(only).toHaveLength(2 + 2 * 3);
      const pruned = JSON.parse(p.stdout) as PruneResult;
      expect(pruned.bytesFreed).toBe(only.reduce((n, [, size]) => n + size, 0));
      console.log(
        `prune freed ${pruned.bytesFreed} bytes in ${pruned.blobs} blob files and ${pruned.cacheEntries} cache entries`,
      );

      // The build that ran beside it is whole, in the store and in the registry.
      expect(v4.push.digest).toBe(v4.build.digest);
      const sizes = await blobsOf(v4.build);
      const named = await imageBlobDigests(v4.build.layout, v4.build.digest);
      for (const digest of [...named, ...v4.build.allotments.map((a) => a.digest)]) {
        const got = await fetchBlobDigest(registry.url, "e2e/ft", digest);
        expect(got).toMatchObject({ status: 200, digest, bytes: sizes.get(digest) });
      }
      const index = await fetch(`${registry.url}/v2/e2e/ft/manifests/v4`, {
        headers: { Accept: "application/vnd.oci.image.index.v1+json" },
      });
      expect(index.headers.get("docker-content-digest")).toBe(v4.build.digest);
      const listed = await machine.json<{ images: ImageListing[] }>(["images"]);
      expect(listed.images.map((i) => i.reference)).toEqual([ref("e2e/ft", "v3"), ref("e2e/ft", "v4")]);
      const again = await machine.json<PushReport>(["push", ref("e2e/ft", "v4")]);
      expect(again).toMatchObject({ blobsSkipped: again.blobsTotal, bytesUploaded: 0 });
    } finally {
      await machine.cleanup();
    }
  });

  describe("a fresh machine pushing the same model into another repository", () => {
    let proxy: RecordingProxy;
    let fresh: CliSandbox;
    let second: BuildPushOutput;
    let seen: SeenRequest[];
    let logged: { method: string; path: string; status: number }[];

    beforeAll(async () => {
      proxy = await startRecordingProxy(registry.url);
      fresh = await cliSandbox();
      await cp(model.dir, join(fresh.dir, "llm"), { recursive: true });
      await requestsSince(registry, 0);
      const mark = logMark(registry);
      second = await fresh.json<BuildPushOutput>([
        "build",
        "-f",
        "llm/2dfs.json",
        "scratch",
        `${proxy.host}/e2e/second:v1`,
        "--push",
      ]);
      logged = await requestsSince(registry, mark);
      seen = [...proxy.seen];
    });

    afterAll(async () => {
      await Promise.all([proxy?.stop(), fresh?.cleanup()]);
    });

    it("builds the same allotments from an empty cache, and uploads no byte: every blob is mounted", () => {
      expect(second.build.cached).toBe(0);
      expect(second.build.allotments.map((a) => a.digest)).toEqual(pushed.build.allotments.map((a) => a.digest));
      expect(second.push).toMatchObject({ blobsUploaded: 0, bytesUploaded: 0, blobsMounted: second.push.blobsTotal });
      const allotmentBytes = second.build.allotments.reduce((n, a) => n + a.size, 0);
      expect(second.push.bytesMounted).toBeGreaterThan(allotmentBytes);
      console.log(
        `fresh machine: ${second.push.blobsMounted} of ${second.push.blobsTotal} blobs mounted, ${second.push.bytesMounted} bytes not sent, ${second.push.blobsUploaded} uploaded`,
      );
    });

    it("the registry was asked to mount each blob by digest alone, answered 201, and was sent no blob bytes", () => {
      const posts = seen.filter((r) => r.method === "POST" && r.url.includes("/blobs/uploads/"));
      const query = (r: SeenRequest) => new URL(r.url, "http://registry").searchParams;
      expect(posts.map((r) => [query(r).get("mount") !== null, query(r).get("from"), r.outcome])).toEqual(
        posts.map(() => [true, null, 201]),
      );
      expect(posts).toHaveLength(second.push.blobsTotal);
      expect(posts.every((r) => r.contentLength === undefined || r.contentLength === "0")).toBe(true);
      // The registry's own log: only those POSTs touched uploads, no PATCH or PUT of a blob.
      const uploads = logged.filter((r) => r.path.includes("/blobs/uploads/"));
      expect(uploads.map((r) => `${r.method} ${r.status}`)).toEqual(posts.map(() => "POST 201"));
      expect(logged.filter((r) => r.method === "PATCH" || (r.method === "PUT" && r.path.includes("/blobs/")))).toEqual(
        [],
      );
    });

    it("and the second repository serves every allotment whole", async () => {
      for (const a of second.build.allotments) {
        expect(await fetchBlobDigest(registry.url, "e2e/second", a.digest)).toMatchObject({
          status: 200,
          digest: a.digest,
          bytes: a.size,
        });
      }
    });
  });
});

describe("with auth on, a fresh machine whose user may not pull the first repository", () => {
  const users = {
    alice: "alice: first's pusher",
    bob: "bob: second's pusher",
    ops: "ops: the admin",
  };
  let registry: Registry;
  let alice: CliSandbox;
  let bob: CliSandbox;
  let first: BuildPushOutput;
  let bobs: { push: BuildPushOutput; stdout: string; stderr: string };

  const hash = async (password: string): Promise<string> =>
    (await run(process.execPath, [join(REPO_ROOT, "scripts", "hash-password.ts")], { input: password })).stdout.trim();
  const as = (user: keyof typeof users) => ({ env: { TDFS_USERNAME: user, TDFS_PASSWORD: users[user] } });

  beforeAll(async () => {
    const config = {
      users: Object.fromEntries(
        await Promise.all(Object.entries(users).map(async ([u, p]) => [u, { password: await hash(p) }])),
      ),
      admins: ["ops"],
      rules: [
        { repos: "first/**", push: ["alice"] },
        { repos: "second/**", push: ["bob"] },
        { repos: "third/**", push: ["ops"] },
      ],
    };
    alice = await cliSandbox();
    bob = await cliSandbox();
    [registry] = await Promise.all([
      startRegistry({
        vars: {
          AUTH_MODE: "token",
          AUTH_CONFIG: JSON.stringify(config),
          TOKEN_SIGNING_KEY: "e2e-model-signing-key-0123456789abcdef",
        },
      }),
      writeHfModel(join(alice.dir, "llm"), { shape: { hidden: 128, intermediate: 256, vocab: 4096 } }),
    ]);
    await cp(join(alice.dir, "llm"), join(bob.dir, "llm"), { recursive: true });
    expect((await alice.run(["init", "llm", "--stages", "2"])).code).toBe(0);
    await cp(join(alice.dir, "llm", "2dfs.json"), join(bob.dir, "llm", "2dfs.json"));
    const build = ["build", "-f", "llm/2dfs.json", "scratch"];
    first = await alice.json<BuildPushOutput>([...build, `${registry.host}/first/model:v1`, "--push"], as("alice"));
    const r = await bob.run([...build, `${registry.host}/second/model:v1`, "--push", "--json"], as("bob"));
    expect(r.code, r.stderr).toBe(0);
    bobs = { push: JSON.parse(r.stdout) as BuildPushOutput, stdout: r.stdout, stderr: r.stderr };
  });

  afterAll(async () => {
    await Promise.all([registry?.stop(), alice?.cleanup(), bob?.cleanup()]);
  });

  it("uploads every byte instead: no mount is granted", () => {
    const push = bobs.push.push;
    expect(bobs.push.build.allotments.map((a) => a.digest)).toEqual(first.build.allotments.map((a) => a.digest));
    expect(push).toMatchObject({ blobsMounted: 0, bytesMounted: 0, blobsUploaded: push.blobsTotal });
    expect(push.bytesUploaded).toBeGreaterThanOrEqual(bobs.push.build.allotments.reduce((n, a) => n + a.size, 0));
    console.log(
      `bob (may not pull first/): ${push.blobsUploaded} of ${push.blobsTotal} blobs uploaded (${push.bytesUploaded} bytes), ${push.blobsMounted} mounted`,
    );
  });

  it("and learns nothing of the first repository: its output never names it, and a refused mount of a blob it holds answers as for a blob nowhere", async () => {
    expect(`${bobs.stdout}${bobs.stderr}`).not.toContain("first");
    const token = await tokenFor(registry, "bob", users.bob, ["repository:second/model:pull,push"]);
    const held = first.build.allotments[1]!.digest;
    const nowhere = `sha256:${createHash("sha256").update("in no repository").digest("hex")}`;
    const answers = [];
    for (const digest of [held, nowhere]) {
      const res = await fetch(`${registry.url}/v2/second/model/blobs/uploads/?mount=${digest}`, {
        method: "POST",
        headers: { Authorization: token },
      });
      const body = await res.text();
      const location = res.headers.get("location");
      answers.push({ status: res.status, headers: [...res.headers.keys()].filter((h) => h !== "date").sort(), body });
      // Leave no session open.
      if (location)
        await fetch(new URL(location, registry.url), { method: "DELETE", headers: { Authorization: token } });
    }
    expect(answers[0]!.status).toBe(202);
    expect(answers[0]).toEqual(answers[1]);
    // Nor may bob read it there.
    const readToken = await tokenFor(registry, "bob", users.bob, ["repository:first/model:pull"]);
    const head = await fetch(`${registry.url}/v2/first/model/blobs/${held}`, {
      method: "HEAD",
      headers: { Authorization: readToken },
    });
    expect([401, 403]).toContain(head.status);
  });

  it("while an admin on a fresh machine, who may pull everything, gets every blob mounted", async () => {
    const ops = await cliSandbox();
    try {
      await cp(join(bob.dir, "llm"), join(ops.dir, "llm"), { recursive: true });
      const out = await ops.json<BuildPushOutput>(
        ["build", "-f", "llm/2dfs.json", "scratch", `${registry.host}/third/model:v1`, "--push"],
        as("ops"),
      );
      expect(out.push).toMatchObject({ blobsUploaded: 0, bytesUploaded: 0, blobsMounted: out.push.blobsTotal });
    } finally {
      await ops.cleanup();
    }
  });
});

/** A bearer token for `scopes`, fetched as docker and skopeo fetch one. */
async function tokenFor(reg: Registry, user: string, password: string, scopes: string[]): Promise<string> {
  const query = new URLSearchParams([["service", reg.host], ...scopes.map((s): [string, string] => ["scope", s])]);
  const res = await fetch(`${reg.url}/token?${query}`, {
    headers: { Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` },
  });
  expect(res.status).toBe(200);
  return `Bearer ${((await res.json()) as { token: string }).token}`;
}
