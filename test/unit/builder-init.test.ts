/**
 * `2dfs-push init` run as a user runs it, on model directories the tests write: a Hugging Face
 * checkout (4 safetensors shards with an index, configs, tokenizer, an `int8/` variant), GGUF and
 * ONNX files, and broken ones. The 2dfs.json it writes is one `build` accepts.
 */
import { mkdir, readFile, stat, truncate, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { InitResult } from "../../builder-cli/src/cli/commands/init.ts";
import { writeHfModel, writeSafetensors, type HfModel } from "../helpers/hf-model.ts";
import { readJson, sandbox, type BuildOutput, type Sandbox } from "./builder-helpers.ts";

interface SpecJson {
  allotments: { src: string | string[]; dst: string | string[]; row: number; col: number }[];
  partitions: Record<string, string>;
}

const boxes: Sandbox[] = [];
afterEach(async () => {
  await Promise.all(boxes.splice(0).map((b) => b.cleanup()));
});

async function modelBox(opts: Parameters<typeof writeHfModel>[1] = {}): Promise<{ s: Sandbox; model: HfModel }> {
  const s = await sandbox();
  boxes.push(s);
  const model = await writeHfModel(path.join(s.dir, "llm"), { variants: { int8: "I8" }, ...opts });
  return { s, model };
}

/** The column (1-based, after the shared cell) of each shard file, in shard order. */
const columnOf = (model: HfModel, file: string): number => model.shards.findIndex((s) => s.file === file) + 1;

describe("init on a Hugging Face model directory", () => {
  it("lays shards out as columns, the shared files at (0,0), the variant as a row, with stages", async () => {
    const { s, model } = await modelBox();
    const r = s.run(["init", "llm", "--stages", "3"]);
    expect(r.status, r.stderr).toBe(0);
    const spec = await readJson<SpecJson>(path.join(model.dir, "2dfs.json"));

    expect(spec.allotments.map((a) => [a.row, a.col, a.src])).toEqual([
      [0, 0, model.shared],
      ...model.shards.map((sh, i) => [0, i + 1, sh.file]),
      [1, 0, "int8/config.json"],
      [1, 1, "int8/model.safetensors"],
    ]);
    expect(spec.allotments[1]!.dst).toBe(`/model/${model.shards[0]!.file}`);
    expect(spec.allotments[0]!.dst).toEqual(model.shared.map((f) => `/model/${f}`));

    // Stage 1 of 3 serves layers 4-7: the shared cell and exactly the shards the index maps them to.
    const stage1 = [4, 5, 6, 7].flatMap((i) => model.shardsOfLayer(i)).map((f) => columnOf(model, f));
    expect([...new Set(stage1)]).toEqual([2, 3]);
    expect(spec.partitions).toEqual({
      main: "0.0.0.4",
      int8: "0.0.0.0--1.0.1.1",
      stage0: "0.0.0.2",
      stage1: "0.0.0.0--0.2.0.3",
      stage2: "0.0.0.0--0.3.0.4",
    });

    // The grid, with sizes and row names, and the bytes each stage pulls against the whole model.
    const lines = r.stdout.split("\n");
    expect(lines[0]).toMatch(/^field: 7 allotments in 2 row\(s\) x 5 column\(s\), 3\d\.\d MB$/);
    expect(lines[1]).toMatch(/^\s+col 0\s+col 1\s+col 2\s+col 3\s+col 4$/);
    expect(lines[2]).toMatch(/^row 0\s+[\d.]+ kB\s+8\.1 MB\s+3\.9 MB\s+3\.9 MB\s+8\.1 MB\s+main$/);
    expect(lines[3]).toMatch(/^row 1\s+\d+ B\s+12\.1 MB\s+·\s+·\s+·\s+int8$/);
    expect(r.stdout).toMatch(/^ {2}stage1\s+0\.0\.0\.0--0\.2\.0\.3\s+7\.9 MB\s+of 24\.2 MB\s+\(33%\)\s+layers 4-7$/m);
    expect(r.stdout).toMatch(/^ {2}stage0\s+0\.0\.0\.2\s+12\.1 MB\s+of 24\.2 MB\s+\(50%\)\s+layers 0-3, embeddings$/m);
    expect(r.stdout).toMatch(/^ {2}stage2 .*layers 8-11, norm and head$/m);
    expect(r.stdout).toContain("int8: its weights are one file, which every stage would pull whole, so no stages");
    expect(r.stdout).toContain("wrote llm/2dfs.json; build and push it with: 2dfs-push build -f llm/2dfs.json scratch");

    // build accepts it as written, and the field is the one init showed.
    const built = s.json<BuildOutput>(["build", "-f", "llm/2dfs.json", "scratch", "localhost:5000/ml/llm:v1"]);
    expect(built.allotments.map((a) => [a.row, a.col])).toEqual(spec.allotments.map((a) => [a.row, a.col]));
  });

  it("gives the same plan as JSON, stage bytes counted from the files", async () => {
    const { s, model } = await modelBox();
    const plan = s.json<InitResult>(["init", "--stages", "3"], model.dir);
    const sizeOf = async (f: string): Promise<number> => (await stat(path.join(model.dir, f))).size;
    const shard = await Promise.all(model.shards.map((sh) => sizeOf(sh.file)));
    const shared = (await Promise.all(model.shared.map(sizeOf))).reduce((n, x) => n + x, 0);
    const stages = plan.partitions.filter((p) => p.stage);
    expect(stages.map((p) => [p.name, p.stage!.layers, p.bytes])).toEqual([
      ["stage0", [0, 3], shared + shard[0]! + shard[1]!],
      ["stage1", [4, 7], shared + shard[1]! + shard[2]!],
      ["stage2", [8, 11], shared + shard[2]! + shard[3]!],
    ]);
    const main = plan.partitions.find((p) => p.name === "main")!;
    expect(main.bytes).toBe(shared + shard.reduce((n, x) => n + x, 0));
    expect(stages.every((p) => p.stage!.rowBytes === main.bytes)).toBe(true);
    expect(plan.file).toBe(path.join(model.dir, "2dfs.json"));
  });

  it("refuses to overwrite a 2dfs.json without --force, and replaces it with --force", async () => {
    const { s, model } = await modelBox();
    const file = path.join(model.dir, "2dfs.json");
    await writeFile(file, "{}");
    const r = s.run(["init"], model.dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("2dfs-push: 2dfs.json already exists; --force replaces it\n");
    expect(await readFile(file, "utf8")).toBe("{}");
    expect(s.run(["init", "--force"], model.dir).status).toBe(0);
    expect((await readJson<SpecJson>(file)).partitions.main).toBe("0.0.0.4");
  });

  it("stops at a truncated shard with exit 2, naming the file, and writes nothing", async () => {
    const { s, model } = await modelBox();
    const victim = model.shards[2]!.file;
    await truncate(path.join(model.dir, victim), (await stat(path.join(model.dir, victim))).size - 1000);
    const r = s.run(["init", "llm"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(
        `^2dfs-push: llm/${victim.replaceAll(".", "\\.")}: is truncated: tensor "[^"]+" ends at byte \\d+ of the data`,
      ),
    );
    await expect(stat(path.join(model.dir, "2dfs.json"))).rejects.toThrow(/ENOENT/);

    await truncate(path.join(model.dir, victim), 4);
    expect(s.run(["init", "llm"]).stderr).toMatch(/llm\/model-00003-of-00004\.safetensors: is truncated: 4 bytes/);
  });

  it("stops when the index names a shard that is not there, or a tensor its shard lacks", async () => {
    const { s, model } = await modelBox({ variants: {} });
    const indexFile = path.join(model.dir, "model.safetensors.index.json");
    const index = await readJson<{ weight_map: Record<string, string> }>(indexFile);
    await writeFile(
      indexFile,
      JSON.stringify({ weight_map: { ...index.weight_map, "lm_head.weight": "model-00009-of-00009.safetensors" } }),
    );
    let r = s.run(["init"], model.dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /model\.safetensors\.index\.json maps tensors to model-00009-of-00009\.safetensors, which is not in \./,
    );
    await writeFile(
      indexFile,
      JSON.stringify({ weight_map: { ...index.weight_map, "lm_head.weight": model.shards[0]!.file } }),
    );
    r = s.run(["init"], model.dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      `maps tensor "lm_head.weight" to ${model.shards[0]!.file}, whose header has no such tensor`,
    );
  });

  it("reads headers only: shards of 8 GiB each are planned in moments", async () => {
    const { s, model } = await modelBox({
      data: "sparse",
      variants: {},
      shape: { hidden: 16384, intermediate: 16384, vocab: 32000 },
    });
    const started = performance.now();
    const plan = s.json<InitResult>(["init", "--stages", "3"], model.dir);
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(plan.bytes).toBeGreaterThan(4 * 8 * 1024 ** 3);
    expect(plan.partitions.find((p) => p.name === "stage1")!.stage!.layers).toEqual([4, 7]);
  });
});

describe("init on other layouts", () => {
  async function box(): Promise<Sandbox> {
    const s = await sandbox();
    boxes.push(s);
    return s;
  }

  async function files(dir: string, list: Record<string, string | Buffer>): Promise<void> {
    for (const [name, content] of Object.entries(list)) {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, name), content);
    }
  }

  const gguf = (n: number): Buffer => Buffer.concat([Buffer.from("GGUF"), Buffer.alloc(n)]);

  it("recognises GGUF, ONNX with its external data, and other files; --rows-by makes a row of each match", async () => {
    const s = await box();
    const dir = path.join(s.dir, "quantized");
    await files(dir, {
      "README.md": "# a model\n",
      "config.json": "{}",
      "model-Q4_K_M.gguf": gguf(3000),
      "model-Q8_0.gguf": gguf(6000),
      "onnx/model.onnx": Buffer.alloc(500),
      "onnx/model.onnx_data": Buffer.alloc(9000),
      ".git/HEAD": "ref: refs/heads/main\n",
    });

    const plan = s.json<InitResult>(["init", "quantized"]);
    expect(plan.cells.map((c) => [c.row, c.col, c.what, c.files.map((f) => f.path)])).toEqual([
      [0, 0, "shared", ["README.md", "config.json"]],
      [0, 1, "gguf", ["model-Q4_K_M.gguf"]],
      [0, 2, "gguf", ["model-Q8_0.gguf"]],
      [1, 1, "onnx with external data", ["onnx/model.onnx", "onnx/model.onnx_data"]],
    ]);
    expect(plan.spec.partitions).toEqual({ main: "0.0.0.2", onnx: "0.0.0.0--1.0.1.1" });

    const byGlob = s.json<InitResult>(["init", "quantized", "--rows-by", "*.gguf", "--force"]);
    expect(byGlob.cells.map((c) => [c.row, c.col, c.files.map((f) => f.path)])).toEqual([
      [0, 0, ["README.md", "config.json"]],
      [0, 1, ["onnx/model.onnx", "onnx/model.onnx_data"]],
      [1, 1, ["model-Q4_K_M.gguf"]],
      [2, 1, ["model-Q8_0.gguf"]],
    ]);
    expect(byGlob.spec.partitions).toEqual({
      main: "0.0.0.1",
      "model-Q4_K_M": "0.0.0.0--1.0.1.1",
      "model-Q8_0": "0.0.0.0--2.0.2.1",
    });

    const none = s.run(["init", "quantized", "--rows-by", "*.safetensors", "--force"]);
    expect(none.status).toBe(2);
    expect(none.stderr).toBe('2dfs-push: --rows-by "*.safetensors" matches no file or folder of the model\n');
    const stages = s.run(["init", "quantized", "--stages", "2", "--force"]);
    expect(stages.status).toBe(2);
    expect(stages.stderr).toMatch(/--stages needs safetensors whose tensors are named like transformer layers/);
  });

  it("names no partition for a top of the directory that has only the shared files", async () => {
    const s = await box();
    const dir = path.join(s.dir, "pipeline");
    await files(dir, { "model_index.json": "{}" });
    const tensor = { dtype: "F32", shape: [64] };
    await writeSafetensors(path.join(dir, "unet/diffusion_pytorch_model.safetensors"), [
      { name: "conv_in.weight", ...tensor },
    ]);
    await writeSafetensors(path.join(dir, "vae/diffusion_pytorch_model.safetensors"), [
      { name: "decoder.weight", ...tensor },
    ]);
    await files(dir, { "vae/config.json": "{}" });
    const plan = s.json<InitResult>(["init", "pipeline"]);
    expect(plan.cells.map((c) => [c.row, c.col, c.files.map((f) => f.path)])).toEqual([
      [0, 0, ["model_index.json"]],
      [1, 1, ["unet/diffusion_pytorch_model.safetensors"]],
      [2, 0, ["vae/config.json"]],
      [2, 1, ["vae/diffusion_pytorch_model.safetensors"]],
    ]);
    expect(plan.spec.partitions).toEqual({ unet: "0.0.0.0--1.0.1.1", vae: "0.0.0.0--2.0.2.1" });
  });

  it("refuses a .gguf that is a Git LFS pointer, a missing directory and a file", async () => {
    const s = await box();
    const dir = path.join(s.dir, "lfs");
    await files(dir, { "model.gguf": "version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 9\n" });
    let r = s.run(["init", "lfs"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      "2dfs-push: lfs/model.gguf is a Git LFS pointer, not the weights: fetch them with `git lfs pull` (or huggingface-cli download)\n",
    );
    r = s.run(["init", "nowhere"]);
    expect([r.status, r.stderr]).toEqual([2, "2dfs-push: nowhere cannot be read (ENOENT)\n"]);
    r = s.run(["init", "lfs/model.gguf"]);
    expect([r.status, r.stderr]).toEqual([
      2,
      "2dfs-push: lfs/model.gguf is not a directory; init takes the model's directory\n",
    ]);
  });
});
