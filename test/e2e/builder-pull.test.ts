/**
 * End to end, as a user and an edge device see it: `2dfs-push build --push` sends a 2x2 model
 * (known files in each allotment, and a named partition in its 2dfs.json) to our registry under
 * `wrangler dev`; a private containerd then pulls two partitions with stock `ctr`, one by
 * rectangle and one by name, and each unpacked snapshot holds exactly the files of the selected
 * allotments, byte for byte as they were on the builder's disk.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listFiles, startContainerd, type Containerd } from "../helpers/containerd.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";
import { cliSandbox, type BuildPushOutput, type CliSandbox } from "./builder-cli.ts";

const REPO = "e2e/model";
const PLATFORM = "linux/amd64";

/** Files of each cell of test/fixtures/builder/2x2, as its 2dfs.json places them: image path -> source. */
const CELLS: Record<string, Record<string, string>> = {
  "0,0": { "model/config.json": "config.json" },
  "0,1": { "model/tokenizer.txt": "tokenizer.txt", "model/README.md": "README.md" },
  "1,0": { "model/layers/0.bin": "model/layers/0.bin", "model/layers/1.bin": "model/layers/1.bin" },
  "1,1": { "model/head.bin": "model/head.bin" },
};

describe("2dfs-push build --push, then containerd pulls partitions", () => {
  let registry: Registry;
  let containerd: Containerd;
  let sandbox: CliSandbox;
  let src: string;
  let pushed: BuildPushOutput;

  beforeAll(async () => {
    sandbox = await cliSandbox();
    [registry, containerd, src] = await Promise.all([startRegistry(), startContainerd(), sandbox.fixture("2x2")]);
    // Run from the fixture's directory, as a user runs it next to their 2dfs.json.
    pushed = await sandbox.json<BuildPushOutput>(["build", "scratch", `${registry.host}/${REPO}:v1`, "--push"], {
      cwd: src,
    });
  });

  afterAll(async () => {
    await Promise.all([registry?.stop(), containerd?.stop(), sandbox?.cleanup()]);
  });

  it("pushed every blob of the image", () => {
    expect(pushed.push.digest).toBe(pushed.build.digest);
    expect(pushed.push.blobsUploaded).toBe(pushed.push.blobsTotal);
    expect(pushed.build.allotments).toHaveLength(4);
  });

  const pulls = [
    { label: "0.0.0.1", cells: ["0,0", "0,1"] },
    // 2dfs.json: "partitions": { "weights": "1.0.1.1" }
    { label: "weights", cells: ["1,0", "1,1"] },
  ];

  it.each(pulls)("containerd pulls v1--$label and unpacks exactly its files", async ({ label, cells }) => {
    const ref = `${registry.host}/${REPO}:v1--${label}`;
    await containerd.pull(ref, { platform: PLATFORM });
    const want = Object.assign({}, ...cells.map((c) => CELLS[c]!)) as Record<string, string>;
    const root = await containerd.rootfs(ref, PLATFORM);
    expect(await listFiles(root)).toEqual(Object.keys(want).sort());
    for (const [path, source] of Object.entries(want)) {
      expect(await readFile(join(root, path)), path).toEqual(await readFile(join(src, source)));
    }
  });
});
