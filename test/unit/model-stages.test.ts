/**
 * Pipeline stages from tensor names and sizes: contiguous layer ranges of about equal bytes, the
 * embeddings on the first stage, the final norm and head on the last (the embeddings too when
 * the head is tied to them), and each stage's shards exactly those holding its tensors.
 */
import { describe, expect, it } from "vitest";
import { planStages, roleOf, splitLayers, type PlacedTensor } from "../../builder-cli/src/model/stages.ts";
import { InputError } from "../../builder-cli/src/spec/errors.ts";
import {
  embeddings,
  finalNorm,
  layerTensors,
  lmHead,
  SMALL_TRANSFORMER,
  tensorBytes,
  type TensorSpec,
} from "../helpers/hf-model.ts";

const S = SMALL_TRANSFORMER;

/** A 12-layer model in 4 shards as Hugging Face writes it: layers 0-2, 3-5, 6-8, 9-11. */
function placed(opts: { head?: boolean } = {}): PlacedTensor[] {
  const shardOf = (i: number): number => Math.floor(i / 3) + 1;
  const at = (t: TensorSpec, shard: number): PlacedTensor => ({ name: t.name, bytes: tensorBytes(t), shard });
  return [
    at(embeddings(S), 1),
    ...Array.from({ length: 12 }, (_, i) => layerTensors(i, S).map((t) => at(t, shardOf(i)))).flat(),
    at(finalNorm(S), 4),
    ...(opts.head === false ? [] : [at(lmHead(S), 4)]),
  ];
}

describe("splitLayers", () => {
  it("cuts equal layers into equal ranges", () => {
    expect(splitLayers(Array(12).fill(100), 3)).toEqual([
      [0, 3],
      [4, 7],
      [8, 11],
    ]);
    expect(splitLayers(Array(12).fill(100), 5)).toEqual([
      [0, 1],
      [2, 4],
      [5, 6],
      [7, 9],
      [10, 11],
    ]);
  });

  it("balances bytes, not counts: a range of large layers holds fewer of them", () => {
    // Layers 0-3 are three times the size of the others (a wider block, a mixture of experts).
    const bytes = [300, 300, 300, 300, 100, 100, 100, 100, 100, 100, 100, 100];
    const ranges = splitLayers(bytes, 2);
    expect(ranges).toEqual([
      [0, 2],
      [3, 11],
    ]);
    const sums = ranges.map(([a, b]) => bytes.slice(a, b + 1).reduce((n, x) => n + x, 0));
    expect(sums).toEqual([900, 1100]);
  });

  it("gives every stage at least one layer, one stage everything", () => {
    expect(splitLayers([1000, 1, 1, 1], 4)).toEqual([
      [0, 0],
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    expect(splitLayers([5, 5, 5], 1)).toEqual([[0, 2]]);
  });

  it("refuses more stages than layers, and a count below 1, as the user's mistake", () => {
    expect(() => splitLayers([1, 2, 3], 4)).toThrow(InputError);
    expect(() => splitLayers([1, 2, 3], 4)).toThrow("--stages 4 asks for more stages than the model has layers (3)");
    expect(() => splitLayers([1, 2, 3], 0)).toThrow(InputError);
  });
});

describe("roleOf", () => {
  it.each([
    ["model.layers.7.self_attn.q_proj.weight", { kind: "layer", layer: 7 }],
    ["transformer.h.11.attn.c_attn.weight", { kind: "layer", layer: 11 }],
    ["gpt_neox.layers.3.mlp.dense_h_to_4h.bias", { kind: "layer", layer: 3 }],
    ["model.decoder.layers.0.fc1.weight", { kind: "layer", layer: 0 }],
    ["model.embed_tokens.weight", { kind: "first" }],
    ["transformer.wte.weight", { kind: "first" }],
    ["model.norm.weight", { kind: "head" }],
    ["transformer.ln_f.bias", { kind: "head" }],
    ["lm_head.weight", { kind: "head" }],
    ["embed_out.weight", { kind: "head" }],
    // A vision tower's layers are not the language model's: they stay with the inputs.
    ["vision_tower.encoder.layers.2.mlp.fc1.weight", { kind: "first" }],
  ])("%s is %o", (name, role) => {
    expect(roleOf(name)).toEqual(role);
  });
});

describe("planStages", () => {
  it("puts layers 4-7 on stage 1 of 3, on exactly the shards that hold them", () => {
    const stages = planStages(placed(), 3);
    expect(stages.map((s) => ({ layers: s.layers, shards: s.shards, extras: s.extras }))).toEqual([
      { layers: [0, 3], shards: [1, 2], extras: ["embeddings"] },
      { layers: [4, 7], shards: [2, 3], extras: [] },
      { layers: [8, 11], shards: [3, 4], extras: ["norm and head"] },
    ]);
    const layer = layerTensors(0, S).reduce((n, t) => n + tensorBytes(t), 0);
    expect(stages[1]!.tensorBytes).toBe(4 * layer);
    expect(stages[0]!.tensorBytes).toBe(4 * layer + tensorBytes(embeddings(S)));
    expect(stages[2]!.tensorBytes).toBe(4 * layer + tensorBytes(finalNorm(S)) + tensorBytes(lmHead(S)));
    // Every tensor is on some stage, and only the tied embeddings could be on two.
    const all = placed().reduce((n, t) => n + t.bytes, 0);
    expect(stages.reduce((n, s) => n + s.tensorBytes, 0)).toBe(all);
  });

  it("follows the weight map wherever it puts a tensor: a head stored in the first shard takes the last stage there", () => {
    const tensors = placed().map((t) => (t.name === "lm_head.weight" ? { ...t, shard: 1 } : t));
    expect(planStages(tensors, 3).map((s) => s.shards)).toEqual([
      [1, 2],
      [2, 3],
      [1, 3, 4],
    ]);
  });

  it("gives the last stage the embeddings too when the head is tied to them", () => {
    const untied = planStages(placed({ head: false }), 3);
    expect(untied[2]!.shards).toEqual([1, 3, 4]);
    expect(untied[2]!.extras).toEqual(["norm and head (tied to the embeddings)"]);
    const tied = planStages(placed(), 3, { tiedHead: true });
    expect(tied[2]!.shards).toEqual([1, 3, 4]);
  });

  it("says so when no tensor is named like a transformer layer", () => {
    expect(() => planStages([{ name: "unet.conv_in.weight", bytes: 10, shard: 1 }], 2)).toThrow(
      /--stages needs transformer layers, and no tensor is named like one/,
    );
  });
});
