/**
 * The 2DFS field: a sparse grid of allotments, stored as the last layer of a 2DFS image.
 *
 * Wire format (the reference tools' Go `json.Marshal` of their field struct, docs/format.md §2):
 *   {"rows":[{"allotments":[{"row":R,"col":C,"digest":"<hex>","diffid":"<hex>"},...],
 *     "allotments_size":N},...],"rows_size":M,"owner":""}
 * Rows run 0..M-1 and a row lists its cells from column 0 on, so a cell's position is its
 * coordinate; a hole is a cell with empty digest and diffid, an empty row lists no cell.
 *
 * In memory a field is sparse: only real allotments, row-major. The reference tools size every
 * row to its last allotment, so that layout is derived on serialization. A parsed field that
 * lists more (trailing holes, trailing empty rows) keeps its widths in `rowWidths`, so that
 * `serializeField(parseField(x)) === x` for everything the parser accepts in compact form.
 */
import { SHA256_HEX_RE } from "../oci/digest.ts";
import { decodeJsonText } from "../oci/json.ts";

/** One cell with content. `digest` (of the blob) and `diffid` (of the tar) are bare lowercase hex sha256. */
export interface Allotment {
  row: number;
  col: number;
  digest: string;
  diffid: string;
}

export interface Field {
  /** Real allotments only (holes omitted), sorted row-major, each cell at most once. */
  allotments: Allotment[];
  owner: string;
  /**
   * How many cells each row lists on the wire, when that is not what the allotments imply
   * (rows 0..last allotment's row, each up to its last allotment). Absent in the usual case.
   */
  rowWidths?: number[];
}

/**
 * Largest row or column. It bounds what a field may cost to serialize or scan (a cell at
 * column N drags N holes along) and is also the largest number a semantic tag accepts.
 */
export const MAX_COORDINATE = 9999;

export class FieldError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FieldError";
  }
}

/** Parses a field blob, strictly: the reference structure and nothing else, every cell at its own position. */
export function parseField(input: string | Uint8Array): Field {
  let json: unknown;
  try {
    // A byte-order mark stays in the text, and JSON.parse refuses it as Go does.
    json = JSON.parse(typeof input === "string" ? input : decodeJsonText(input));
  } catch (e) {
    throw new FieldError(`field is not valid UTF-8 JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  const top = expectObject(json, "field", ["rows", "rows_size", "owner"]);
  const rows = expectArray(top.rows, "rows");
  expectSize(top.rows_size, rows.length, "rows_size", "rows");
  if (rows.length > MAX_COORDINATE + 1)
    throw new FieldError(`field has ${rows.length} rows, at most ${MAX_COORDINATE + 1} are allowed`);
  if (typeof top.owner !== "string") throw new FieldError("owner must be a string");

  const allotments: Allotment[] = [];
  const widths: number[] = [];
  const seen = new Set<string>();
  rows.forEach((rowValue, r) => {
    const where = `rows[${r}]`;
    const row = expectObject(rowValue, where, ["allotments", "allotments_size"]);
    const cells = expectArray(row.allotments, `${where}.allotments`);
    expectSize(row.allotments_size, cells.length, `${where}.allotments_size`, `${where}.allotments`);
    widths.push(cells.length);
    cells.forEach((cellValue, c) => {
      const cellWhere = `${where}.allotments[${c}]`;
      const cell = expectObject(cellValue, cellWhere, ["row", "col", "digest", "diffid"]);
      const rowNum = coordinate(cell.row, `${cellWhere}.row`);
      const colNum = coordinate(cell.col, `${cellWhere}.col`);
      const key = `${rowNum},${colNum}`;
      if (seen.has(key)) throw new FieldError(`duplicate cell (${key}) at ${cellWhere}`);
      seen.add(key);
      if (rowNum !== r || colNum !== c) {
        throw new FieldError(
          `${cellWhere} claims cell (${key}) but sits at (${r},${c}); rows list their cells in column order from 0`,
        );
      }
      if (cell.digest === "" && cell.diffid === "") return; // a hole
      allotments.push({
        row: rowNum,
        col: colNum,
        digest: hex(cell.digest, `digest of cell (${key})`),
        diffid: hex(cell.diffid, `diffid of cell (${key})`),
      });
    });
  });

  const field: Field = { allotments, owner: top.owner };
  if (!sameWidths(widths, impliedWidths(allotments))) field.rowWidths = widths;
  return field;
}

/** The field blob, byte for byte as the reference tools write it. */
export function serializeField(field: Field): string {
  checkAllotments(field.allotments, true);
  const implied = impliedWidths(field.allotments);
  const widths = field.rowWidths ?? implied;
  if (field.rowWidths) checkWidths(field.rowWidths, implied);

  const parts: string[] = [];
  let next = 0; // index into field.allotments, which are row-major
  for (let r = 0; r < widths.length; r++) {
    const width = widths[r] ?? 0;
    const cells: string[] = [];
    for (let c = 0; c < width; c++) {
      const a = field.allotments[next];
      if (a && a.row === r && a.col === c) {
        cells.push(cellJson(r, c, a.digest, a.diffid));
        next++;
      } else {
        cells.push(cellJson(r, c, "", ""));
      }
    }
    parts.push(`{"allotments":[${cells.join(",")}],"allotments_size":${width}}`);
  }
  return `{"rows":[${parts.join(",")}],"rows_size":${widths.length},"owner":${goJsonString(field.owner)}}`;
}

/** Builds a field from cells in any order: validates them and sorts them row-major. */
export function fieldFromAllotments(cells: Allotment[], owner = ""): Field {
  const allotments = cells
    .map((a) => ({ row: a.row, col: a.col, digest: a.digest, diffid: a.diffid }))
    .sort((a, b) => a.row - b.row || a.col - b.col);
  checkAllotments(allotments, false);
  return { allotments, owner };
}

/**
 * Validates allotments: coordinates, hex, no holes, no duplicates. `mustBeSorted` is for a
 * field's own list, whose order serialization relies on.
 */
function checkAllotments(allotments: readonly Allotment[], mustBeSorted: boolean): void {
  let prev: Allotment | undefined;
  for (const a of allotments) {
    coordinate(a.row, "row");
    coordinate(a.col, "col");
    const key = `${a.row},${a.col}`;
    if (a.digest === "" && a.diffid === "") {
      throw new FieldError(`cell (${key}) has no digest: a hole is not an allotment, leave it out`);
    }
    hex(a.digest, `digest of cell (${key})`);
    hex(a.diffid, `diffid of cell (${key})`);
    if (prev && prev.row === a.row && prev.col === a.col) throw new FieldError(`duplicate cell (${key})`);
    if (mustBeSorted && prev && (prev.row > a.row || (prev.row === a.row && prev.col > a.col))) {
      throw new FieldError(`allotments are not in row-major order at cell (${key})`);
    }
    prev = a;
  }
}

/** Explicit widths must still list every allotment. */
function checkWidths(widths: readonly number[], implied: readonly number[]): void {
  if (widths.length < implied.length)
    throw new FieldError(`rowWidths lists ${widths.length} rows, allotments need ${implied.length}`);
  widths.forEach((w, r) => {
    if (!Number.isInteger(w) || w < 0 || w > MAX_COORDINATE + 1)
      throw new FieldError(`rowWidths[${r}] is not a valid width: ${w}`);
    if (w < (implied[r] ?? 0))
      throw new FieldError(`rowWidths[${r}] is ${w}, but row ${r} has an allotment at column ${(implied[r] ?? 0) - 1}`);
  });
}

/** Row widths the reference builder would write: rows up to the last allotment's, each up to its last allotment. */
function impliedWidths(allotments: readonly Allotment[]): number[] {
  const widths: number[] = [];
  for (const a of allotments) {
    while (widths.length <= a.row) widths.push(0);
    widths[a.row] = Math.max(widths[a.row] ?? 0, a.col + 1);
  }
  return widths;
}

function sameWidths(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((w, i) => w === b[i]);
}

function cellJson(row: number, col: number, digest: string, diffid: string): string {
  return `{"row":${row},"col":${col},"digest":"${digest}","diffid":"${diffid}"}`;
}

/**
 * A string as Go's encoding/json writes it: like JSON.stringify, but with <, >, & and the two
 * JavaScript line terminators escaped, so an owner with those characters keeps the reference digest.
 */
function goJsonString(s: string): string {
  return JSON.stringify(s).replace(
    /[<>&\u2028\u2029]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function expectObject(value: unknown, where: string, keys: readonly string[]): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new FieldError(`${where} must be a JSON object`);
  const obj = value as Record<string, unknown>;
  for (const k of keys) if (!(k in obj)) throw new FieldError(`${where} has no "${k}"`);
  for (const k of Object.keys(obj)) {
    if (!keys.includes(k)) throw new FieldError(`${where} has an unknown key "${k}" (expected ${keys.join(", ")})`);
  }
  return obj;
}

function expectArray(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new FieldError(`${where} must be an array`);
  return value;
}

function expectSize(value: unknown, actual: number, where: string, what: string): void {
  if (value !== actual) throw new FieldError(`${where} is ${JSON.stringify(value)} but ${what} has ${actual} entries`);
}

function coordinate(value: unknown, where: string): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new FieldError(`${where} must be a non-negative integer, got ${JSON.stringify(value)}`);
  }
  if (value < 0) throw new FieldError(`${where} is negative: ${value}`);
  if (value > MAX_COORDINATE)
    throw new FieldError(`${where} is ${value}, beyond the largest coordinate ${MAX_COORDINATE}`);
  // JSON's -0 is the coordinate 0: keep it as 0, so that a parsed field equals the one it describes.
  return value === 0 ? 0 : value;
}

function hex(value: unknown, where: string): string {
  if (typeof value !== "string" || !SHA256_HEX_RE.test(value)) {
    throw new FieldError(`${where} is not 64 lowercase hex characters (bare sha256): ${JSON.stringify(value)}`);
  }
  return value;
}
