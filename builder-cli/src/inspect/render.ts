/** Human rendering of `inspect`: the field as a grid of sizes, then the semantic tags. */
import { formatBytes } from "../cli/output.ts";
import type { InspectResult } from "./inspect.ts";

const HOLE = "·";

export function renderInspect(r: InspectResult): string {
  const lines: string[] = [];
  lines.push(`${r.reference}  ${r.digest}`);
  if (r.imageName) lines.push(`name: ${r.imageName}`);
  for (const p of r.platforms)
    lines.push(`platform ${p.platform}: manifest ${p.manifest}${p.field ? `, field ${p.field}` : ""}`);
  lines.push("", `field: ${r.cells.length} allotments in ${r.rows} row(s) x ${r.cols} column(s)`);

  const cell = (row: number, col: number): string => {
    const c = r.cells.find((x) => x.row === row && x.col === col);
    return c ? (c.size !== undefined ? formatBytes(c.size) : c.digest.slice(7, 19)) : HOLE;
  };
  const table: string[][] = [["", ...Array.from({ length: r.cols }, (_, c) => `col ${c}`)]];
  for (let row = 0; row < r.rows; row++)
    table.push([`row ${row}`, ...Array.from({ length: r.cols }, (_, c) => cell(row, c))]);
  const widths = table[0]!.map((_, i) => Math.max(...table.map((t) => t[i]!.length)));
  for (const t of table)
    lines.push(
      t
        .map((s, i) => (i === 0 ? s.padEnd(widths[i]!) : s.padStart(widths[i]!)))
        .join("  ")
        .trimEnd(),
    );

  lines.push("", "semantic tags:");
  for (const t of r.tags) {
    if (t.error) {
      lines.push(`  ${t.tag}  invalid: ${t.error}`);
      continue;
    }
    const size = t.bytes !== undefined ? `, ${formatBytes(t.bytes)}` : "";
    const cells = t.allotments.map((a) => `(${a.row},${a.col})`).join(" ") || "nothing";
    lines.push(`  ${t.tag}  ${t.allotments.length} allotment(s)${size}: ${cells}`);
  }
  return lines.join("\n");
}
