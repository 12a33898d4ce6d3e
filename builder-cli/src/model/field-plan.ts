/**
 * From a scanned model directory to a 2dfs.json: where each file goes in the field, and the named
 * partitions a fleet pulls by.
 *
 *   (0,0)        the shared small files (configs, tokenizer, index): every partition includes it
 *   (r,0)        row r's own small files (a variant's config), in every partition of row r
 *   (r,1..)      row r's weights, one column per shard or file, in shard order
 *
 * Each row with files of its own gets a partition named after it (`main` for the top of the model
 * directory, else the variant folder's or file's name). With stages, each row whose safetensors
 * hold transformer layers also gets `stage0`..`stage{N-1}` (`<row>-stage<k>` for variant rows),
 * each selecting the shared cells and only the shards that hold the stage's tensors.
 */
import path from "node:path";
import { canonicalSelection, selects, type Rect } from "../../../core/tdfs/label.ts";
import { InputError } from "../spec/errors.ts";
import { parsePartitions } from "../spec/partitions.ts";
import type { ModelFile, ModelRow, ScannedModel, WeightColumn } from "./scan.ts";
import { layerCount, planStages, type Stage } from "./stages.ts";

export interface PlannedCell {
  row: number;
  col: number;
  files: ModelFile[];
  size: number;
  /** What the cell holds, for people: "shared", "config", "safetensors shard 2 of 4", "gguf". */
  what: string;
}

export interface PlannedPartition {
  name: string;
  selection: string;
  row: number;
  cells: { row: number; col: number }[];
  /** The files' bytes it pulls (a tar adds a little per file). */
  bytes: number;
  /** For a stage: which one, and the bytes of its whole row, which the stages split. */
  stage?: Stage & { rowBytes: number };
}

export interface RowSummary {
  name: string;
  source: string;
  bytes: number;
  /** Why a row with weights got no stages. */
  noStages?: string;
}

/** The 2dfs.json that `build` reads. */
export interface SpecJson {
  allotments: { src: string | string[]; dst: string | string[]; row: number; col: number }[];
  partitions: Record<string, string>;
}

export interface FieldPlan {
  cells: PlannedCell[];
  rows: RowSummary[];
  partitions: PlannedPartition[];
  bytes: number;
  spec: SpecJson;
}

export interface PlanOptions {
  /** Pipeline stages per row with transformer layers. */
  stages?: number;
  /** Where the files land in the image; their paths below the model directory are kept. */
  dst?: string;
}

export const DEFAULT_DST = "/model";
const ROOT_ROW = "main";

export function planField(model: ScannedModel, opts: PlanOptions = {}): FieldPlan {
  const dst = opts.dst ?? DEFAULT_DST;
  const cells: PlannedCell[] = [];
  const cell = (row: number, col: number, files: ModelFile[], what: string): void => {
    if (files.length) cells.push({ row, col, files, size: files.reduce((n, f) => n + f.size, 0), what });
  };
  cell(0, 0, model.shared, "shared");
  model.rows.forEach((r, i) => {
    cell(i, 0, r.small, "config");
    r.columns.forEach((c, j) => cell(i, j + 1, c.files, describeColumn(c)));
  });
  if (cells.length === 0) throw new Error("a scanned model has files");

  const names = rowNames(model.rows);
  const sharedRects: Rect[] = model.shared.length ? [{ x1: 0, y1: 0, x2: 0, y2: 0 }] : [];
  const partitions: PlannedPartition[] = [];
  const rows: RowSummary[] = [];
  const add = (name: string, row: number, rects: Rect[]): PlannedPartition => {
    if (partitions.some((p) => p.name === name)) {
      throw new InputError(`two partitions would be named "${name}"; rename the folder or file it comes from`);
    }
    const selection = canonicalSelection(rects);
    const picked = cells.filter((c) => selects(rects, c.row, c.col));
    const p: PlannedPartition = {
      name,
      selection,
      row,
      cells: picked.map((c) => ({ row: c.row, col: c.col })),
      bytes: picked.reduce((n, c) => n + c.size, 0),
    };
    partitions.push(p);
    return p;
  };
  model.rows.forEach((r, i) => {
    // A row of nothing but the shared files (weights only in variant folders) is no model to name.
    const own = cells.filter((c) => c.row === i && !(c.row === 0 && c.col === 0 && c.what === "shared"));
    if (own.length === 0) return;
    const width = Math.max(...own.map((c) => c.col));
    const whole = add(names[i]!, i, [...sharedRects, { x1: i, y1: 0, x2: i, y2: width }]);
    const summary: RowSummary = { name: names[i]!, source: r.source, bytes: whole.bytes };
    rows.push(summary);
    if (!opts.stages || r.columns.length === 0) return;
    const tensors = r.columns.flatMap((c, j) =>
      c.inModel ? (c.header?.tensors ?? []).map((t) => ({ name: t.name, bytes: t.end - t.begin, shard: j + 1 })) : [],
    );
    const shards = r.columns.filter((c) => c.inModel).length;
    if (layerCount(tensors) === 0) {
      summary.noStages = tensors.length ? "no transformer layers in its safetensors" : "no safetensors";
      return;
    }
    if (shards === 1) {
      // Every stage would select the one file: the row's own partition already pulls it.
      summary.noStages = "its weights are one file, which every stage would pull whole";
      return;
    }
    const ownRect: Rect[] = r.small.length ? [{ x1: i, y1: 0, x2: i, y2: 0 }] : [];
    for (const s of planStages(tensors, opts.stages, { tiedHead: r.tiedHead })) {
      const rects = [...sharedRects, ...ownRect, ...s.shards.map((col) => ({ x1: i, y1: col, x2: i, y2: col }))];
      const name = i === 0 ? `stage${s.index}` : `${names[i]}-stage${s.index}`;
      add(name, i, rects).stage = { ...s, rowBytes: whole.bytes };
    }
  });
  if (opts.stages && !partitions.some((p) => p.stage)) {
    throw new InputError(
      "--stages needs safetensors whose tensors are named like transformer layers (model.layers.<i>.…), and the model has none",
    );
  }

  const spec: SpecJson = {
    allotments: [...cells]
      .sort((a, b) => a.row - b.row || a.col - b.col)
      .map((c) => {
        const src = c.files.map((f) => f.path);
        const to = src.map((p) => path.posix.join(dst, p));
        return { src: src.length === 1 ? src[0]! : src, dst: to.length === 1 ? to[0]! : to, row: c.row, col: c.col };
      }),
    partitions: Object.fromEntries(partitions.map((p) => [p.name, p.selection])),
  };
  // What build will check, checked now: names a tag can spell, at most 16 rectangles each.
  parsePartitions(spec.partitions, "2dfs.json", cells);
  return { cells, rows, partitions, bytes: cells.reduce((n, c) => n + c.size, 0), spec };
}

function describeColumn(c: WeightColumn): string {
  if (c.format === "safetensors" && c.shard) return `safetensors shard ${c.shard.index} of ${c.shard.of}`;
  if (c.format === "safetensors" && !c.inModel) return "safetensors (not in the index)";
  if (c.format === "onnx" && c.files.length > 1) return "onnx with external data";
  return c.format;
}

/** Row names that a semantic tag can spell, unique, never `all`. */
function rowNames(rows: readonly ModelRow[]): string[] {
  const taken = new Set<string>(["all"]);
  return rows.map((r, i) => {
    const base = i === 0 && r.source === "" ? ROOT_ROW : partitionName(path.posix.basename(r.source));
    let name = base;
    for (let k = 2; taken.has(name); k++) name = `${base}-${k}`;
    taken.add(name);
    return name;
  });
}

/** `int8` stays `int8`; `Q4_K_M.gguf` becomes `Q4_K_M`; `8bit` becomes `v8bit` (a name starts with a letter). */
export function partitionName(source: string): string {
  const stem = source.replace(/\.(?:safetensors|gguf|onnx|bin|pt|pth)$/, "");
  const cleaned = stem
    .replace(/[^A-Za-z0-9_.-]+/g, "-")
    .replace(/-{2,}/g, "-")
    .replace(/^[-.]+|[-.]+$/g, "");
  return /^[A-Za-z]/.test(cleaned) ? cleaned : `v${cleaned || "ariant"}`;
}
