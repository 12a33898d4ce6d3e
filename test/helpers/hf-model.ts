/**
 * Model directories in the Hugging Face layout, written by the tests themselves: safetensors
 * files with real headers (8-byte little-endian length, JSON, then the tensor bytes), tensors
 * named like a Llama-style transformer (`model.embed_tokens.weight`, `model.layers.<i>.…`,
 * `model.norm.weight`, `lm_head.weight`), `model.safetensors.index.json`, config and tokenizer
 * files, and variant folders such as `int8/`.
 */
import { randomFillSync } from "node:crypto";
import { mkdir, open, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

export interface TensorSpec {
  name: string;
  dtype: string;
  shape: number[];
}

const DTYPE_BYTES: Record<string, number> = { F32: 4, BF16: 2, F16: 2, I8: 1, U8: 1 };

export function tensorBytes(t: TensorSpec): number {
  const per = DTYPE_BYTES[t.dtype];
  if (per === undefined) throw new Error(`hf-model: no size for dtype ${t.dtype}`);
  return t.shape.reduce((n, d) => n * d, per);
}

/**
 * Writes a safetensors file. `data` fills the tensors: random bytes (the default), or `sparse`,
 * which only sets the file's length, so a test can have a shard of many gigabytes that takes no
 * disk and no time to write.
 */
export async function writeSafetensors(
  file: string,
  tensors: readonly TensorSpec[],
  opts: { data?: "random" | "sparse"; metadata?: Record<string, string> } = {},
): Promise<{ size: number; headerLength: number }> {
  const header: Record<string, unknown> = { __metadata__: opts.metadata ?? { format: "pt" } };
  let offset = 0;
  for (const t of tensors) {
    const bytes = tensorBytes(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  // Writers pad the header with spaces to a multiple of 8, so that the data is aligned.
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const head = Buffer.alloc(8 + Buffer.byteLength(json));
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
  head.write(json, 8, "utf8");
  await mkdir(dirname(file), { recursive: true });
  const fh = await open(file, "w");
  try {
    await fh.write(head, 0, head.length, 0);
    if (opts.data === "sparse") {
      await fh.truncate(head.length + offset);
    } else {
      const chunk = Buffer.allocUnsafe(1 << 20);
      for (let at = 0; at < offset; at += chunk.length) {
        const n = Math.min(chunk.length, offset - at);
        randomFillSync(chunk, 0, n);
        await fh.write(chunk, 0, n, head.length + at);
      }
    }
  } finally {
    await fh.close();
  }
  return { size: head.length + offset, headerLength: Buffer.byteLength(json) };
}

export interface TransformerShape {
  layers: number;
  hidden: number;
  intermediate: number;
  vocab: number;
  dtype: string;
}

/** The tensors of one decoder layer, as Llama names them. */
export function layerTensors(i: number, s: TransformerShape): TensorSpec[] {
  const p = `model.layers.${i}`;
  const t = (name: string, shape: number[]): TensorSpec => ({ name: `${p}.${name}`, dtype: s.dtype, shape });
  return [
    t("input_layernorm.weight", [s.hidden]),
    t("self_attn.q_proj.weight", [s.hidden, s.hidden]),
    t("self_attn.k_proj.weight", [s.hidden, s.hidden]),
    t("self_attn.v_proj.weight", [s.hidden, s.hidden]),
    t("self_attn.o_proj.weight", [s.hidden, s.hidden]),
    t("post_attention_layernorm.weight", [s.hidden]),
    t("mlp.gate_proj.weight", [s.intermediate, s.hidden]),
    t("mlp.up_proj.weight", [s.intermediate, s.hidden]),
    t("mlp.down_proj.weight", [s.hidden, s.intermediate]),
  ];
}

export const embeddings = (s: TransformerShape): TensorSpec => ({
  name: "model.embed_tokens.weight",
  dtype: s.dtype,
  shape: [s.vocab, s.hidden],
});
export const finalNorm = (s: TransformerShape): TensorSpec => ({
  name: "model.norm.weight",
  dtype: s.dtype,
  shape: [s.hidden],
});
export const lmHead = (s: TransformerShape): TensorSpec => ({
  name: "lm_head.weight",
  dtype: s.dtype,
  shape: [s.vocab, s.hidden],
});

export interface HfModelOptions {
  shape?: Partial<TransformerShape>;
  /** Which layers each shard holds, in shard order: the embeddings go with the first, the norm and head with the last. */
  shardLayers?: number[][];
  /** Variant folders, each a single-file safetensors of the same model in another dtype. */
  variants?: Record<string, string>;
  data?: "random" | "sparse";
}

export interface WrittenShard {
  file: string;
  size: number;
  layers: number[];
  tensors: string[];
}

export interface HfModel {
  dir: string;
  shape: TransformerShape;
  shards: WrittenShard[];
  /** Files every partition needs: configs, tokenizer, the index. */
  shared: string[];
  variants: Record<string, { files: string[]; size: number }>;
  /** The shard files the index maps the tensors of a layer to. */
  shardsOfLayer(i: number): string[];
}

export const SMALL_TRANSFORMER: TransformerShape = {
  layers: 12,
  hidden: 256,
  intermediate: 512,
  vocab: 8192,
  dtype: "BF16",
};

/**
 * A Llama-style model: by default 12 layers of 1.3 MB in 4 shards (embeddings and layers 0-2,
 * 3-5, 6-8, 9-11 with the norm and head), about 24 MB, plus what `variants` adds.
 */
export async function writeHfModel(dir: string, opts: HfModelOptions = {}): Promise<HfModel> {
  const shape = { ...SMALL_TRANSFORMER, ...opts.shape };
  const plan = opts.shardLayers ?? [
    [0, 1, 2],
    [3, 4, 5],
    [6, 7, 8],
    [9, 10, 11],
  ];
  await mkdir(dir, { recursive: true });
  const shards: WrittenShard[] = [];
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (const [k, layers] of plan.entries()) {
    const file = `model-${String(k + 1).padStart(5, "0")}-of-${String(plan.length).padStart(5, "0")}.safetensors`;
    const tensors = [
      ...(k === 0 ? [embeddings(shape)] : []),
      ...layers.flatMap((i) => layerTensors(i, shape)),
      ...(k === plan.length - 1 ? [finalNorm(shape), lmHead(shape)] : []),
    ];
    const { size } = await writeSafetensors(join(dir, file), tensors, { data: opts.data ?? "random" });
    for (const t of tensors) {
      weightMap[t.name] = file;
      total += tensorBytes(t);
    }
    shards.push({ file, size, layers, tensors: tensors.map((t) => t.name) });
  }
  const config = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: shape.hidden,
    intermediate_size: shape.intermediate,
    num_hidden_layers: shape.layers,
    vocab_size: shape.vocab,
    torch_dtype: "bfloat16",
    tie_word_embeddings: false,
  };
  const shared: Record<string, string> = {
    "config.json": JSON.stringify(config, null, 2),
    "generation_config.json": JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }),
    "model.safetensors.index.json": JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2),
    "tokenizer.json": JSON.stringify({ version: "1.0", model: { type: "BPE", vocab: { a: 0, b: 1 }, merges: [] } }),
    "tokenizer_config.json": JSON.stringify({ model_max_length: 2048 }),
    "special_tokens_map.json": JSON.stringify({ bos_token: "<s>", eos_token: "</s>" }),
  };
  for (const [name, text] of Object.entries(shared)) await writeFile(join(dir, name), text);

  const variants: HfModel["variants"] = {};
  for (const [folder, dtype] of Object.entries(opts.variants ?? {})) {
    const s = { ...shape, dtype };
    const tensors = [
      embeddings(s),
      ...Array.from({ length: shape.layers }, (_, i) => layerTensors(i, s)).flat(),
      finalNorm(s),
      lmHead(s),
    ];
    const weights = `${folder}/model.safetensors`;
    const { size } = await writeSafetensors(join(dir, weights), tensors, { data: opts.data ?? "random" });
    const cfg = JSON.stringify({ ...config, quantization_config: { bits: 8 } });
    await writeFile(join(dir, folder, "config.json"), cfg);
    variants[folder] = { files: [`${folder}/config.json`, weights], size: size + Buffer.byteLength(cfg) };
  }
  return {
    dir,
    shape,
    shards,
    shared: Object.keys(shared).sort(),
    variants,
    shardsOfLayer: (i) => [
      ...new Set(
        Object.entries(weightMap)
          .filter(([name]) => name.startsWith(`model.layers.${i}.`))
          .map(([, file]) => file),
      ),
    ],
  };
}
