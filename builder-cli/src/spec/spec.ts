/**
 * Reads a 2dfs.json: the reference format (`allotments[]` of `src`/`dst`, a string or matching
 * arrays, placed at `row`/`col`), plus a directory as `src` and named `partitions`. Every problem
 * is an InputError whose message names the allotment, so the user can find the line to fix.
 *
 * Relative `src` paths are resolved against the directory holding the 2dfs.json, so a build gives
 * the same result from whatever directory it is started.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { InputError } from "./errors.ts";
import { parsePartitions } from "./partitions.ts";
import { normalizeDst } from "./dst.ts";
import { MAX_COORDINATE } from "../../../core/tdfs/field.ts";

const pathOrPaths = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

/** Strict at every level: an unknown key is a typo to report, never a setting to drop silently. */
const ALLOTMENT_KEYS = ["src", "dst", "row", "col"] as const;
const TOP_KEYS = ["allotments", "partitions"] as const;

const specSchema = z.strictObject({
  allotments: z.array(
    z.strictObject({
      src: pathOrPaths,
      dst: pathOrPaths,
      row: z.number(),
      col: z.number(),
    }),
  ),
  partitions: z.record(z.string(), z.string()).optional(),
});

/** One source copied into an allotment. `dst` is relative to the image root, with no leading "/". */
export interface Copy {
  src: string;
  dst: string;
  /** The dst ended with "/": a file source goes inside it under its own name. */
  dstIsDir: boolean;
}

export interface AllotmentSpec {
  /** Position in the file's `allotments` array, for messages. */
  index: number;
  row: number;
  col: number;
  copies: Copy[];
}

export interface BuildSpec {
  allotments: AllotmentSpec[];
  /** Named partitions: name -> canonical selection ("x1.y1.x2.y2[--...]"). */
  partitions: Record<string, string>;
}

/** How messages name an allotment: its index and, when known, its cell. */
export function allotmentName(index: number, row?: unknown, col?: unknown): string {
  const cell = typeof row === "number" && typeof col === "number" ? ` (row ${row}, col ${col})` : "";
  return `allotments[${index}]${cell}`;
}

export async function loadSpec(file: string): Promise<BuildSpec> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new InputError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  return parseSpec(json, path.dirname(path.resolve(file)), file);
}

/** Validates parsed JSON; `baseDir` anchors relative sources. Checks that every source exists. */
export async function parseSpec(json: unknown, baseDir: string, file = "2dfs.json"): Promise<BuildSpec> {
  const parsed = specSchema.safeParse(json);
  if (!parsed.success) {
    // A misspelt key also makes the key it was meant to be "missing": name the typo first.
    const issues = [...parsed.error.issues].sort(
      (a, b) => Number(b.code === "unrecognized_keys") - Number(a.code === "unrecognized_keys"),
    );
    throw new InputError(`${file}: ${describeIssue(issues[0], json)}`);
  }

  const seen = new Map<string, number>();
  const allotments: AllotmentSpec[] = [];
  for (const [index, a] of parsed.data.allotments.entries()) {
    const name = allotmentName(index, a.row, a.col);
    for (const [axis, v] of [["row", a.row] as const, ["col", a.col] as const]) {
      if (!Number.isInteger(v) || v < 0 || v > MAX_COORDINATE) {
        throw new InputError(`${file}: ${name}: ${axis} must be an integer from 0 to ${MAX_COORDINATE}, got ${v}`);
      }
    }
    const cell = `${a.row},${a.col}`;
    const first = seen.get(cell);
    if (first !== undefined) throw new InputError(`${file}: ${name}: cell already used by allotments[${first}]`);
    seen.set(cell, index);

    const srcs = typeof a.src === "string" ? [a.src] : a.src;
    const dsts = typeof a.dst === "string" ? [a.dst] : a.dst;
    if (srcs.length !== dsts.length) {
      throw new InputError(`${file}: ${name}: src has ${srcs.length} entries but dst has ${dsts.length}`);
    }
    const copies: Copy[] = [];
    for (const [i, src] of srcs.entries()) {
      const dst = dsts[i]!;
      const normalized = normalizeDst(dst);
      if (normalized === undefined) throw new InputError(`${file}: ${name}: dst "${dst}" escapes the image root`);
      const abs = path.resolve(baseDir, src);
      try {
        await stat(abs);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const why = code === "ENOENT" ? "does not exist" : `cannot be read (${code ?? String(e)})`;
        throw new InputError(`${file}: ${name}: src "${src}" ${why}`);
      }
      copies.push({ src: abs, dst: normalized, dstIsDir: dst.endsWith("/") || normalized === "" });
    }
    allotments.push({ index, row: a.row, col: a.col, copies });
  }
  const partitions = parsePartitions(parsed.data.partitions ?? {}, file, allotments);
  return { allotments, partitions };
}

/** Turns a zod issue into a sentence that names the allotment or key it is about. */
function describeIssue(issue: z.core.$ZodIssue | undefined, json: unknown): string {
  if (!issue) return "invalid";
  const [top, index, field] = issue.path;
  if (top === "allotments" && typeof index === "number") {
    const raw = (json as { allotments: Record<string, unknown>[] }).allotments[index];
    const name = allotmentName(index, raw?.row, raw?.col);
    if (issue.code === "unrecognized_keys") return `${name}: ${unknownKeys(issue.keys, ALLOTMENT_KEYS)}`;
    const what =
      field === undefined ? "must be an object with src, dst, row and col" : `${String(field)}: ${issue.message}`;
    return `${name}: ${what}`;
  }
  if (issue.code === "unrecognized_keys" && issue.path.length === 0) {
    return `top level: ${unknownKeys(issue.keys, TOP_KEYS)}`;
  }
  const where = issue.path.length ? issue.path.join(".") : "top level";
  return `${where}: ${issue.message}`;
}

/** `unknown key "colum" (did you mean "col"?); allowed: src, dst, row, col` */
function unknownKeys(keys: readonly string[], allowed: readonly string[]): string {
  const named = keys.map((k) => {
    const near = closest(k, allowed);
    return `"${k}"${near ? ` (did you mean "${near}"?)` : ""}`;
  });
  return `unknown key${keys.length > 1 ? "s" : ""} ${named.join(", ")}; allowed: ${allowed.join(", ")}`;
}

/** The allowed key within two edits of `key` (case ignored), if there is one. */
function closest(key: string, allowed: readonly string[]): string | undefined {
  let best: { key: string; d: number } | undefined;
  for (const a of allowed) {
    const d = editDistance(key.toLowerCase(), a);
    if (d <= 2 && (!best || d < best.d)) best = { key: a, d };
  }
  return best?.key;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
