/**
 * Human rendering of `inspect`: where the image was read, what a requested semantic tag pulls,
 * the field as a grid of sizes, each allotment's destination paths, then the semantic tags.
 */
import { formatBytes } from "../../../core/format.ts";
import { fieldGrid, HOLE } from "../text/table.ts";
import type { InspectOrigin, InspectResult, SemanticTag } from "./inspect.ts";

/** Paths shown per allotment; --json lists them all. */
const PATHS_SHOWN = 4;

const ORIGIN: Record<InspectOrigin["kind"], string> = {
  local: "the local image store",
  layout: "the OCI layout",
  registry: "the registry",
};

export function renderInspect(r: InspectResult): string {
  const lines: string[] = [];
  const hint = r.origin.kind === "local" ? " (--remote reads the registry instead)" : "";
  lines.push(`read from ${ORIGIN[r.origin.kind]} ${r.origin.location}${hint}`);
  lines.push(`${r.reference}  ${r.digest}`);
  if (r.requested) lines.push(`${r.requested.tag} pulls ${describeSelection(r.requested)}`);
  if (r.imageName) lines.push(`name: ${r.imageName}`);
  for (const p of r.platforms)
    lines.push(`platform ${p.platform}: manifest ${p.manifest}${p.field ? `, field ${p.field}` : ""}`);
  lines.push("", `field: ${r.cells.length} allotments in ${r.rows} row(s) x ${r.cols} column(s)`);

  const cell = (row: number, col: number): string => {
    const c = r.cells.find((x) => x.row === row && x.col === col);
    return c ? (c.size !== undefined ? formatBytes(c.size) : c.digest.slice(7, 19)) : HOLE;
  };
  lines.push(...fieldGrid(r.rows, r.cols, cell));

  if (r.cells.some((c) => c.paths)) {
    lines.push("", "allotments and where their files land:");
    for (const c of r.cells) {
      const paths = c.paths ?? [];
      const shown = paths.slice(0, PATHS_SHOWN).map((p) => `/${p}`);
      if (paths.length > PATHS_SHOWN) shown.push(`(+${paths.length - PATHS_SHOWN} more)`);
      lines.push(`  (${c.row},${c.col})  ${shown.join(" ") || "(empty)"}`);
    }
  }

  lines.push("", "semantic tags:");
  for (const t of r.tags) {
    lines.push(t.error ? `  ${t.tag}  invalid: ${t.error}` : `  ${t.tag}  ${describeSelection(t)}`);
  }
  return lines.join("\n");
}

/** `2 allotment(s), 1.2 MB: (1,0) (1,1)` */
function describeSelection(t: SemanticTag): string {
  const size = t.bytes !== undefined ? `, ${formatBytes(t.bytes)}` : "";
  const cells = t.allotments.map((a) => `(${a.row},${a.col})`).join(" ") || "nothing";
  return `${t.allotments.length} allotment(s)${size}: ${cells}`;
}
