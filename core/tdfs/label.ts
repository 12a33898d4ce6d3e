/**
 * Semantic tags: `<tag>--x1.y1.x2.y2[--x1.y1.x2.y2...]` selects every allotment with
 * x1 <= row <= x2 and y1 <= col <= y2, rectangles unioned (docs/format.md §4). `<tag>--<name>` selects
 * a partition the image names in an annotation `2dfs.partition.<name>` = `x1.y1.x2.y2[--...]`.
 *
 * Parsing is strict where the reference registry was silent (it skipped what it could not read):
 * a malformed label is an error that explains the syntax, never a smaller selection.
 */
import { MAX_COORDINATE, type Allotment, type Field } from "./field.ts";

/** x is the row, y the column; both bounds inclusive. */
export interface Rect {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

/**
 * Most rectangles one label may resolve to (names expanded). A 128-character tag fits about 13
 * of the shortest rectangles; named partitions get the same room, so any selection stays cheap.
 */
export const MAX_RECTS = 16;

export const NAMED_PARTITION_PREFIX = "2dfs.partition.";

/** `<tag>--all` is the whole field flattened into one image: no image may name a partition so. */
export const ALL_PARTITION = "all";

/** A partition name: starts with a letter, so it can never be read as coordinates. */
const NAME_RE = /^[A-Za-z][A-Za-z0-9_.-]*$/;
const NUMBER_RE = /^[0-9]+$/;

export const LABEL_SYNTAX =
  `a semantic tag is <tag>--x1.y1.x2.y2[--x1.y1.x2.y2...] (x = row, y = column, both inclusive, ` +
  `decimal 0..${MAX_COORDINATE}, x1 <= x2, y1 <= y2, at most ${MAX_RECTS} rectangles) ` +
  `or <tag>--<name> for a partition the image names in an annotation ${NAMED_PARTITION_PREFIX}<name>`;

export class LabelError extends Error {
  /** The reason alone, without the syntax reminder that `message` carries. */
  readonly reason: string;

  constructor(reason: string) {
    super(`${reason}; ${LABEL_SYNTAX}`);
    this.name = "LabelError";
    this.reason = reason;
  }
}

/**
 * Splits `tag--label` at the first `--`, as the reference registry does; undefined for a plain tag.
 * In a run of more than two dashes the split is at its last two: no label starts with "-", so a
 * base tag that ends in dashes (`v1-` in `v1---0.0.1.1`) keeps them instead of failing as a label.
 */
export function splitSemanticTag(tag: string): { base: string; label: string } | undefined {
  let at = tag.indexOf("--");
  if (at < 0) return undefined;
  while (tag[at + 2] === "-") at++;
  return { base: tag.slice(0, at), label: tag.slice(at + 2) };
}

/** Parses a label (the part after the first `--`) into rectangles; names resolve through `named`. */
export function parseLabel(label: string, named: Record<string, string> = {}): Rect[] {
  const rects: Rect[] = [];
  for (const part of splitParts(label, `label "${label}"`)) {
    if (NAME_RE.test(part)) {
      if (!Object.hasOwn(named, part)) {
        const known = Object.keys(named).sort();
        throw new LabelError(
          `unknown partition name "${part}" (${known.length ? `this image names: ${known.join(", ")}` : "this image names no partitions"})`,
        );
      }
      const value = named[part] as string;
      for (const p of splitParts(value, `named partition "${part}"`)) {
        rects.push(parseRect(p, `named partition "${part}"`));
        checkCount(rects.length);
      }
    } else {
      rects.push(parseRect(part, `label "${label}"`));
    }
    checkCount(rects.length);
  }
  return rects;
}

/**
 * A canonical string for the set of cells that `rects` select, whatever field it is applied
 * to: rows are cut into maximal bands whose selected columns are the same, and each band's
 * columns into maximal intervals. Equal cell sets give equal strings; "" selects nothing.
 */
export function canonicalSelection(rects: readonly Rect[]): string {
  return formatRects(normalizeRects(rects));
}

function formatRects(rects: readonly Rect[]): string {
  return rects.map((r) => `${r.x1}.${r.y1}.${r.x2}.${r.y2}`).join("--");
}

/**
 * The canonical selection as a label that parseLabel reads back to the same rectangles: for what
 * is written where a label is later parsed (a named partition's annotation). The union of N
 * rectangles may take more than N disjoint ones (a cross of two takes three), so a selection that
 * fits a label may not fit in canonical form: LabelError then, rather than an annotation the
 * registry would refuse at every pull.
 */
export function canonicalLabel(rects: readonly Rect[]): string {
  const canonical = normalizeRects(rects);
  if (canonical.length > MAX_RECTS) {
    throw new LabelError(
      `the selection takes ${canonical.length} rectangles in canonical form, more than ${MAX_RECTS}`,
    );
  }
  return formatRects(canonical);
}

/** The union of `rects` as disjoint rectangles in canonical order (see canonicalSelection). */
export function normalizeRects(rects: readonly Rect[]): Rect[] {
  // Rows where coverage can change: each rectangle's first row and the row after its last.
  const cuts = [...new Set(rects.flatMap((r) => [r.x1, r.x2 + 1]))].sort((a, b) => a - b);
  const out: Rect[] = [];
  let open: { x1: number; x2: number; cols: [number, number][] } | undefined;
  const flush = (): void => {
    if (open) for (const [y1, y2] of open.cols) out.push({ x1: open.x1, y1, x2: open.x2, y2 });
    open = undefined;
  };
  for (let i = 0; i + 1 < cuts.length; i++) {
    const x1 = cuts[i] as number;
    const x2 = (cuts[i + 1] as number) - 1;
    const cols = mergeIntervals(rects.filter((r) => r.x1 <= x1 && x2 <= r.x2).map((r) => [r.y1, r.y2]));
    if (open && open.x2 + 1 === x1 && sameIntervals(open.cols, cols)) {
      open.x2 = x2;
      continue;
    }
    flush();
    if (cols.length) open = { x1, x2, cols };
  }
  flush();
  return out;
}

export function selects(rects: readonly Rect[], row: number, col: number): boolean {
  return rects.some((r) => r.x1 <= row && row <= r.x2 && r.y1 <= col && col <= r.y2);
}

/** The selected allotments, row-major, each once; holes are not allotments, so never selected. */
export function selectAllotments(field: Field, rects: readonly Rect[]): Allotment[] {
  return field.allotments.filter((a) => selects(rects, a.row, a.col));
}

/**
 * Named partitions from annotations `2dfs.partition.<name>`. Names that a label could never
 * spell are left out; values are checked when a label uses them, so one bad entry does not
 * break the others.
 */
export function namedPartitions(annotations: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(annotations ?? {}) as [string, unknown][]) {
    // Annotations read from JSON that no schema checked (partition-image.ts) may hold any value.
    if (!key.startsWith(NAMED_PARTITION_PREFIX) || typeof value !== "string") continue;
    const name = key.slice(NAMED_PARTITION_PREFIX.length);
    if (NAME_RE.test(name) && !name.includes("--")) out[name] = value;
  }
  return out;
}

function splitParts(text: string, where: string): string[] {
  if (text === "") throw new LabelError(`${where} is empty`);
  const parts = text.split("--");
  // Cheap bound before any parsing: more parts than rectangles allowed cannot succeed.
  checkCount(parts.length);
  if (parts.some((p) => p === ""))
    throw new LabelError(`${where} has an empty part (a leading, trailing or doubled "--")`);
  return parts;
}

function parseRect(part: string, where: string): Rect {
  const nums = part.split(".");
  if (nums.length !== 4) {
    throw new LabelError(`"${part}" in ${where} is not x1.y1.x2.y2 (four numbers separated by dots)`);
  }
  const [x1, y1, x2, y2] = nums.map((n) => {
    if (!NUMBER_RE.test(n)) throw new LabelError(`"${n}" in "${part}" is not a decimal number`);
    const v = Number(n);
    if (v > MAX_COORDINATE)
      throw new LabelError(`${n} in "${part}" is beyond the largest coordinate ${MAX_COORDINATE}`);
    return v;
  }) as [number, number, number, number];
  if (x1 > x2) throw new LabelError(`"${part}" is inverted: x1 ${x1} > x2 ${x2}`);
  if (y1 > y2) throw new LabelError(`"${part}" is inverted: y1 ${y1} > y2 ${y2}`);
  return { x1, y1, x2, y2 };
}

function checkCount(n: number): void {
  if (n > MAX_RECTS) throw new LabelError(`too many rectangles (more than ${MAX_RECTS})`);
}

/** Sorts and merges overlapping or touching column intervals. */
function mergeIntervals(intervals: [number, number][]): [number, number][] {
  const sorted = intervals.sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

function sameIntervals(a: readonly [number, number][], b: readonly [number, number][]): boolean {
  return a.length === b.length && a.every(([x, y], i) => x === b[i]?.[0] && y === b[i]?.[1]);
}
