/**
 * Plain-text tables for the CLI's human output: columns padded to their widest cell, the first
 * column (names) left-aligned and the others (sizes, counts) right-aligned unless told, trailing
 * blanks trimmed.
 */

/** An empty cell of a field. */
export const HOLE = "·";

export function alignColumns(table: readonly (readonly string[])[], leftAligned: readonly number[] = [0]): string[] {
  const widths: number[] = [];
  for (const row of table) row.forEach((s, i) => (widths[i] = Math.max(widths[i] ?? 0, s.length)));
  return table.map((row) =>
    row
      .map((s, i) => (leftAligned.includes(i) ? s.padEnd(widths[i]!) : s.padStart(widths[i]!)))
      .join("  ")
      .trimEnd(),
  );
}

/** A field as a grid: a header of columns, then one line per row with each cell's text. */
export function fieldGrid(
  rows: number,
  cols: number,
  cell: (row: number, col: number) => string,
  rowLabel: (row: number) => string = (row) => `row ${row}`,
  trailer?: (row: number) => string,
): string[] {
  const table: string[][] = [["", ...Array.from({ length: cols }, (_, c) => `col ${c}`), ...(trailer ? [""] : [])]];
  for (let row = 0; row < rows; row++) {
    table.push([
      rowLabel(row),
      ...Array.from({ length: cols }, (_, c) => cell(row, c)),
      ...(trailer ? [trailer(row)] : []),
    ]);
  }
  return alignColumns(table, trailer ? [0, cols + 1] : [0]);
}
