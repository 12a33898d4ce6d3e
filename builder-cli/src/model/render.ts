/**
 * `init`'s report for people: the field as a grid of sizes with each row's partition name, what
 * each cell holds, then the partitions with the bytes each pulls; a stage's bytes are shown
 * against its whole row, the model the stages split.
 */
import { formatBytes } from "../../../core/format.ts";
import { alignColumns, fieldGrid, HOLE } from "../text/table.ts";
import type { FieldPlan, PlannedPartition } from "./field-plan.ts";

/** Files named per cell; --json lists them all. */
const FILES_SHOWN = 3;

export function renderFieldPlan(plan: FieldPlan): string[] {
  const rows = Math.max(...plan.cells.map((c) => c.row)) + 1;
  const cols = Math.max(...plan.cells.map((c) => c.col)) + 1;
  const at = (row: number, col: number) => plan.cells.find((c) => c.row === row && c.col === col);
  const rowName = (row: number): string => plan.partitions.find((p) => p.row === row && !p.stage)?.name ?? "";
  const lines = [
    `field: ${plan.cells.length} allotments in ${rows} row(s) x ${cols} column(s), ${formatBytes(plan.bytes)}`,
    ...fieldGrid(
      rows,
      cols,
      (r, c) => {
        const cell = at(r, c);
        return cell ? formatBytes(cell.size) : HOLE;
      },
      undefined,
      rowName,
    ),
    "",
  ];
  lines.push(
    ...alignColumns(
      plan.cells.map((c) => {
        const names = c.files.slice(0, FILES_SHOWN).map((f) => f.path);
        if (c.files.length > FILES_SHOWN) names.push(`(+${c.files.length - FILES_SHOWN} more)`);
        return [`  (${c.row},${c.col})`, c.what, names.join(" ")];
      }),
      [0, 1, 2],
    ),
  );
  const shared = plan.cells.some((c) => c.row === 0 && c.col === 0 && c.what === "shared");
  lines.push("", `partitions${shared ? " (each includes the shared files at (0,0))" : ""}:`);
  lines.push(...alignColumns(plan.partitions.map(partitionLine), [0, 1, 5]));
  for (const r of plan.rows.filter((r) => r.noStages)) lines.push(`  ${r.name}: ${r.noStages}, so no stages`);
  return lines;
}

function partitionLine(p: PlannedPartition): string[] {
  const head = [`  ${p.name}`, p.selection, formatBytes(p.bytes)];
  if (!p.stage) return head;
  const s = p.stage;
  const percent = s.rowBytes > 0 ? Math.round((p.bytes / s.rowBytes) * 100) : 0;
  const layers = s.layers[0] === s.layers[1] ? `layer ${s.layers[0]}` : `layers ${s.layers[0]}-${s.layers[1]}`;
  return [...head, `of ${formatBytes(s.rowBytes)}`, `(${percent}%)`, [layers, ...s.extras].join(", ")];
}
