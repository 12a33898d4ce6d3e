/**
 * Pipeline-parallel stages from tensor names and sizes alone. A decoder-only transformer is a
 * stack of layers (`model.layers.<i>.…`), with the token embeddings before it and the final norm
 * and the LM head after it. Stage k of N serves a contiguous range of layers; the ranges are cut
 * where the running total of layer bytes comes nearest to k/N of all layer bytes, so stages hold
 * about equal bytes of layers. The embeddings (and any other tensor outside the layers) go to the
 * first stage, the final norm and the head to the last, as pipeline-parallel servers place them.
 * A model that ties its head to the embeddings (no head tensor of its own) needs them on the last
 * stage too.
 *
 * Each stage then needs exactly the shards that hold one of its tensors.
 */
import { InputError } from "../spec/errors.ts";

/** A tensor and the shard (a column of the field) that holds it. */
export interface PlacedTensor {
  name: string;
  bytes: number;
  shard: number;
}

export type TensorRole = { kind: "layer"; layer: number } | { kind: "head" } | { kind: "first" };

export interface Stage {
  index: number;
  /** First and last layer, inclusive. */
  layers: [number, number];
  /** Bytes of the stage's own tensors. */
  tensorBytes: number;
  /** The shards holding its tensors, ascending. */
  shards: number[];
  /** What it serves besides its layers: "embeddings", "norm and head". */
  extras: string[];
}

/** Where the decoder layers of the common architectures live (Llama, Mistral, Qwen, GPT-2, GPT-NeoX, OPT, Falcon, MPT). */
const LAYER_RE =
  /^(?:model\.|model\.decoder\.|model\.language_model\.|language_model\.model\.|transformer\.|gpt_neox\.)?(?:layers|h|blocks)\.(\d+)\./;
/** What follows the last layer: the head and the final norm. */
const HEAD_RE =
  /^(?:lm_head|embed_out|output)\.|^(?:model\.|model\.decoder\.|model\.language_model\.|language_model\.model\.|transformer\.|gpt_neox\.)?(?:norm|ln_f|final_layernorm|final_layer_norm|norm_f)\.[^.]+$/;
/** A head of its own, rather than one tied to the embeddings. */
const OWN_HEAD_RE = /^(?:lm_head|embed_out|output)\./;

export function roleOf(name: string): TensorRole {
  const m = LAYER_RE.exec(name);
  if (m) return { kind: "layer", layer: Number(m[1]) };
  if (HEAD_RE.test(name)) return { kind: "head" };
  return { kind: "first" };
}

/** How many distinct layers the tensors belong to. */
export function layerCount(tensors: readonly { name: string }[]): number {
  const layers = new Set<number>();
  for (const t of tensors) {
    const r = roleOf(t.name);
    if (r.kind === "layer") layers.add(r.layer);
  }
  return layers.size;
}

/**
 * Cuts layers into `n` contiguous, non-empty ranges of about equal bytes: range k starts at the
 * layer where the running total is nearest to k/n of the whole (the earlier one on a tie).
 * `bytes[i]` is the size of the i-th layer in order; returns index ranges, inclusive.
 */
export function splitLayers(bytes: readonly number[], n: number): [number, number][] {
  if (!Number.isInteger(n) || n < 1) throw new InputError(`--stages must be a whole number of 1 or more, got ${n}`);
  if (n > bytes.length) {
    throw new InputError(`--stages ${n} asks for more stages than the model has layers (${bytes.length})`);
  }
  const prefix = [0];
  for (const b of bytes) prefix.push(prefix.at(-1)! + b);
  const total = prefix.at(-1)!;
  const cuts = [0];
  for (let k = 1; k < n; k++) {
    const target = (total * k) / n;
    // Leave at least one layer for this range and for each range after it.
    const lo = cuts.at(-1)! + 1;
    const hi = bytes.length - (n - k);
    let best = lo;
    for (let c = lo + 1; c <= hi; c++) {
      if (Math.abs(prefix[c]! - target) < Math.abs(prefix[best]! - target)) best = c;
    }
    cuts.push(best);
  }
  cuts.push(bytes.length);
  return cuts.slice(0, -1).map((start, k) => [start, cuts[k + 1]! - 1]);
}

/**
 * The stages of a model whose tensors are `tensors`. `tiedHead` says the head is the embedding
 * matrix (config.json `tie_word_embeddings`); without a head tensor it is assumed.
 */
export function planStages(tensors: readonly PlacedTensor[], n: number, opts: { tiedHead?: boolean } = {}): Stage[] {
  const layerBytes = new Map<number, number>();
  for (const t of tensors) {
    const r = roleOf(t.name);
    if (r.kind === "layer") layerBytes.set(r.layer, (layerBytes.get(r.layer) ?? 0) + t.bytes);
  }
  if (layerBytes.size === 0) {
    throw new InputError(
      "--stages needs transformer layers, and no tensor is named like one (model.layers.<i>.…, transformer.h.<i>.…)",
    );
  }
  const layers = [...layerBytes.keys()].sort((a, b) => a - b);
  const ranges = splitLayers(
    layers.map((l) => layerBytes.get(l)!),
    n,
  ).map(([a, b]): [number, number] => [layers[a]!, layers[b]!]);
  const tied = opts.tiedHead === true || !tensors.some((t) => OWN_HEAD_RE.test(t.name));
  const stageOf = (t: PlacedTensor): number[] => {
    const r = roleOf(t.name);
    if (r.kind === "layer") return [ranges.findIndex(([a, b]) => a <= r.layer && r.layer <= b)];
    if (r.kind === "head") return [n - 1];
    return tied && /embed|wte|word_embeddings/.test(t.name) ? [0, n - 1] : [0];
  };
  const stages: Stage[] = ranges.map((layers, index) => ({ index, layers, tensorBytes: 0, shards: [], extras: [] }));
  const shards = stages.map(() => new Set<number>());
  for (const t of tensors) {
    for (const s of stageOf(t)) {
      stages[s]!.tensorBytes += t.bytes;
      shards[s]!.add(t.shard);
    }
  }
  for (const s of stages) s.shards = [...shards[s.index]!].sort((a, b) => a - b);
  stages[0]!.extras.push("embeddings");
  stages[n - 1]!.extras.push(tied ? "norm and head (tied to the embeddings)" : "norm and head");
  return stages;
}
