/**
 * What a model directory holds, as `init` lays it out in a field. It knows the Hugging Face
 * layouts: sharded safetensors (`model-0000k-of-0000N.safetensors` with
 * `model.safetensors.index.json`, whose `weight_map` maps each tensor to its shard), single-file
 * safetensors, GGUF, ONNX with its external data, PyTorch checkpoints, and any other file.
 *
 * - Weights are columns: the model's shards first, in shard order, then the other weight files.
 * - The small files beside them (configs, tokenizer, the index) are what every user of the model
 *   needs: at the top of the directory they are shared by all rows; in a variant folder, by that
 *   variant's row. A file larger than SHARED_MAX is a column of its own, whatever it is.
 * - Rows are the model at the top of the directory, then each variant folder (a folder directly
 *   below that holds weights, such as `int8/` or `onnx/`), or whatever `--rows-by GLOB` matches
 *   (directories or files, by their path relative to the model directory).
 *
 * Safetensors files are read by their headers only (model/safetensors.ts); hidden entries (`.git`,
 * `.cache`) and the 2dfs.json itself are left out.
 */
import { open, readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import picomatch from "picomatch";
import { InputError } from "../spec/errors.ts";
import { lfsPointerProblem, readSafetensorsHeader, readStart, type SafetensorsHeader } from "./safetensors.ts";

export type WeightFormat = "safetensors" | "gguf" | "onnx" | "pytorch";

export interface ModelFile {
  /** Relative to the model directory, with "/" separators. */
  path: string;
  size: number;
}

export interface WeightColumn {
  /** `file` for a large file of no known weight format. */
  format: WeightFormat | "file";
  /** One file, or an ONNX model with its external data. */
  files: ModelFile[];
  size: number;
  /** `k of N` from a file name such as model-00002-of-00004.safetensors. */
  shard?: { index: number; of: number };
  /** Safetensors only. */
  header?: SafetensorsHeader;
  /** Part of the row's model: the files its index maps tensors to (all its safetensors without an index). */
  inModel: boolean;
}

export interface ModelRow {
  /** The folder or file the row was made from; "" for the top of the model directory. */
  source: string;
  /** Its own small files (a variant's config): every partition of the row includes them. */
  small: ModelFile[];
  columns: WeightColumn[];
  /** config.json says the head is the embedding matrix (`tie_word_embeddings`). */
  tiedHead: boolean;
}

export interface ScannedModel {
  /** Small files at the top of the directory: every partition includes them. */
  shared: ModelFile[];
  /** Row 0 is the top of the directory (it may have no weights), then the variants. */
  rows: ModelRow[];
}

/** Configs, tokenizers and vocabularies are far below this; a file above it is worth a column. */
export const SHARED_MAX = 64 * 1024 * 1024;
const SPEC_FILE = "2dfs.json";
const INDEX_RE = /\.safetensors\.index\.json$/;
const SHARD_RE = /-(\d+)-of-(\d+)\.[^/]+$/;
const ONNX_DATA_RE = /\.onnx(?:_data|\.data)$/;
const PYTORCH_RE = /\.(?:bin|pt|pth|ckpt|h5|msgpack|tflite|ot|npz)$/;

/**
 * Paths in "natural" order, digit runs compared as numbers (`part-2` before `part-10`), all else
 * by code unit: the same order on every machine, whatever its locale, so the same directory always
 * gives the same field.
 */
export function naturalCompare(a: string, b: string): number {
  const pa = a.match(/\d+|\D+/g) ?? [];
  const pb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    const numeric = /^\d/.test(x) && /^\d/.test(y);
    if (numeric && Number(x) !== Number(y)) return Number(x) - Number(y);
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}
const byPath = (a: { path: string }, b: { path: string }): number => naturalCompare(a.path, b.path);

export function weightFormatOf(file: string): WeightFormat | undefined {
  if (file.endsWith(".safetensors")) return "safetensors";
  if (file.endsWith(".gguf")) return "gguf";
  if (file.endsWith(".onnx") || ONNX_DATA_RE.test(file)) return "onnx";
  if (PYTORCH_RE.test(file)) return "pytorch";
  return undefined;
}

export interface ScanOptions {
  /** Paths matching it become rows, instead of the variant folders. */
  rowsBy?: string;
  /** How messages name the directory (as the user typed it). */
  shownAs?: string;
}

export async function scanModel(dir: string, opts: ScanOptions = {}): Promise<ScannedModel> {
  const shownAs = opts.shownAs ?? dir;
  const files = await listFiles(dir, shownAs);
  if (files.length === 0) throw new InputError(`${shownAs} holds no files to put in a field`);
  const groups = opts.rowsBy ? groupByGlob(files, opts.rowsBy) : groupByVariantFolder(files);
  const shared: ModelFile[] = [];
  const rows: ModelRow[] = [];
  for (const g of groups) {
    const small = g.files.filter((f) => !weightFormatOf(f.path) && f.size <= SHARED_MAX);
    const large = g.files.filter((f) => !small.includes(f));
    const row: ModelRow = {
      source: g.source,
      small: g.source === "" ? [] : small,
      columns: await columnsOf(dir, shownAs, large, small),
      tiedHead: await tiedHead(dir, g.source === "" ? small : [...small, ...shared]),
    };
    if (g.source === "") shared.push(...small);
    rows.push(row);
  }
  return { shared, rows };
}

async function listFiles(dir: string, shownAs: string): Promise<ModelFile[]> {
  let top;
  try {
    top = await stat(dir);
  } catch (e) {
    throw new InputError(`${shownAs} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (!top.isDirectory()) throw new InputError(`${shownAs} is not a directory; init takes the model's directory`);
  const out: ModelFile[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      if (e.name.startsWith(".") || (rel === "" && e.name === SPEC_FILE)) continue;
      const child = rel ? `${rel}/${e.name}` : e.name;
      // Symlinks are followed: a Hugging Face cache snapshot is made of links to its blobs.
      const s = e.isSymbolicLink() ? await stat(path.join(dir, child)).catch(() => undefined) : e;
      if (s?.isDirectory()) await walk(child);
      else if (s?.isFile()) out.push({ path: child, size: (await stat(path.join(dir, child))).size });
    }
  };
  await walk("");
  return out.sort(byPath);
}

interface Group {
  source: string;
  files: ModelFile[];
}

/** The top of the directory, then each folder directly below it that holds weights. */
function groupByVariantFolder(files: readonly ModelFile[]): Group[] {
  const topDir = (f: ModelFile): string => (f.path.includes("/") ? f.path.slice(0, f.path.indexOf("/")) : "");
  const variants = [...new Set(files.filter((f) => weightFormatOf(f.path)).map(topDir))].filter((d) => d !== "");
  const groups: Group[] = [
    { source: "", files: [] },
    ...variants.sort(naturalCompare).map((source) => ({ source, files: [] as ModelFile[] })),
  ];
  for (const f of files) (groups.find((g) => g.source !== "" && g.source === topDir(f)) ?? groups[0]!).files.push(f);
  return groups;
}

/** A row per path the glob matches (the outermost match of each file); the rest is row 0. */
function groupByGlob(files: readonly ModelFile[], glob: string): Group[] {
  const matches = picomatch(glob, { dot: false });
  const owner = (f: ModelFile): string => {
    const parts = f.path.split("/");
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join("/");
      if (matches(p)) return p;
    }
    return "";
  };
  const groups = new Map<string, Group>([["", { source: "", files: [] }]]);
  for (const f of files) {
    const source = owner(f);
    if (!groups.has(source)) groups.set(source, { source, files: [] });
    groups.get(source)!.files.push(f);
  }
  if (groups.size === 1) throw new InputError(`--rows-by "${glob}" matches no file or folder of the model`);
  return [...groups.values()].sort((a, b) =>
    a.source === "" ? -1 : b.source === "" ? 1 : naturalCompare(a.source, b.source),
  );
}

async function columnsOf(
  dir: string,
  shownAs: string,
  large: readonly ModelFile[],
  small: readonly ModelFile[],
): Promise<WeightColumn[]> {
  const shown = (f: ModelFile): string => path.join(shownAs, f.path);
  const indexed = await indexedShards(dir, shownAs, small, large);
  const columns: WeightColumn[] = [];
  const onnxData = large.filter((f) => ONNX_DATA_RE.test(f.path));
  for (const f of large) {
    const format = weightFormatOf(f.path) ?? "file";
    if (format === "onnx" && ONNX_DATA_RE.test(f.path)) {
      // External data goes with the model that names it, when that model is here.
      const model = f.path.replace(ONNX_DATA_RE, ".onnx");
      if (large.some((g) => g.path === model)) continue;
    }
    const group =
      format === "onnx" && f.path.endsWith(".onnx")
        ? [f, ...onnxData.filter((d) => d.path.replace(ONNX_DATA_RE, ".onnx") === f.path)]
        : [f];
    const m = SHARD_RE.exec(f.path);
    const column: WeightColumn = {
      format,
      files: group,
      size: group.reduce((n, g) => n + g.size, 0),
      inModel: format === "safetensors" && (indexed ? indexed.has(f.path) : true),
      ...(m ? { shard: { index: Number(m[1]), of: Number(m[2]) } } : {}),
    };
    if (format === "safetensors") column.header = await readSafetensorsHeader(path.join(dir, f.path), shown(f));
    if (format === "gguf") await checkGguf(path.join(dir, f.path), shown(f));
    columns.push(column);
  }
  await checkIndexAgainstHeaders(dir, shownAs, small, columns);
  // The model's shards first, in shard order; then the other weights; then other large files.
  const rank = (c: WeightColumn): number => (c.inModel ? 0 : c.format === "file" ? 2 : 1);
  return columns.sort((a, b) => rank(a) - rank(b) || byPath(a.files[0]!, b.files[0]!));
}

/** The shard files the row's index (or indexes) map tensors to; undefined when it has none. */
async function indexedShards(
  dir: string,
  shownAs: string,
  small: readonly ModelFile[],
  large: readonly ModelFile[],
): Promise<Set<string> | undefined> {
  const indexes = small.filter((f) => INDEX_RE.test(f.path));
  if (indexes.length === 0) return undefined;
  const out = new Set<string>();
  for (const index of indexes) {
    for (const file of new Set(Object.values(await weightMap(dir, shownAs, index)))) {
      const rel = path.posix.join(path.posix.dirname(index.path), file);
      if (!large.some((f) => f.path === rel)) {
        throw new InputError(`${path.join(shownAs, index.path)} maps tensors to ${file}, which is not in ${shownAs}`);
      }
      out.add(rel);
    }
  }
  return out;
}

async function weightMap(dir: string, shownAs: string, index: ModelFile): Promise<Record<string, string>> {
  const where = path.join(shownAs, index.path);
  let json: { weight_map?: unknown };
  try {
    json = JSON.parse(await readFile(path.join(dir, index.path), "utf8")) as { weight_map?: unknown };
  } catch (e) {
    throw new InputError(`${where} is not valid JSON: ${(e as Error).message}`);
  }
  const map = json?.weight_map;
  if (typeof map !== "object" || map === null || !Object.values(map).every((v) => typeof v === "string")) {
    throw new InputError(`${where} has no weight_map of tensor names to shard files`);
  }
  return map as Record<string, string>;
}

/** Each tensor the index names is in the header of the shard it names. */
async function checkIndexAgainstHeaders(
  dir: string,
  shownAs: string,
  small: readonly ModelFile[],
  columns: readonly WeightColumn[],
): Promise<void> {
  for (const index of small.filter((f) => INDEX_RE.test(f.path))) {
    for (const [tensor, file] of Object.entries(await weightMap(dir, shownAs, index))) {
      const rel = path.posix.join(path.posix.dirname(index.path), file);
      const header = columns.find((c) => c.files[0]!.path === rel)?.header;
      if (header && !header.tensors.some((t) => t.name === tensor)) {
        throw new InputError(
          `${path.join(shownAs, index.path)} maps tensor "${tensor}" to ${file}, whose header has no such tensor`,
        );
      }
    }
  }
}

async function checkGguf(file: string, shownAs: string): Promise<void> {
  const fh = await open(file, "r");
  try {
    const head = await readStart(fh, 64);
    const lfs = lfsPointerProblem(head);
    if (lfs) throw new InputError(`${shownAs} ${lfs}`);
    if (head.subarray(0, 4).toString("latin1") !== "GGUF") {
      throw new InputError(`${shownAs} is not a GGUF file (it does not start with "GGUF")`);
    }
  } finally {
    await fh.close();
  }
}

/** `tie_word_embeddings` from the first config.json among `files`. */
async function tiedHead(dir: string, files: readonly ModelFile[]): Promise<boolean> {
  const config = files.find((f) => path.posix.basename(f.path) === "config.json");
  if (!config) return false;
  try {
    const json = JSON.parse(await readFile(path.join(dir, config.path), "utf8")) as { tie_word_embeddings?: unknown };
    return json.tie_word_embeddings === true;
  } catch {
    // A config that is not JSON is the model's business; its own loader will say so.
    return false;
  }
}
