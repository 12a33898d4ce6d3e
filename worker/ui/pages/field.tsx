/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
/**
 * The field as a grid, one table per platform: every allotment is a cell with
 * `data-cell="<row>.<col>"`, its size and compression; holes are empty cells. The selection
 * panel shows the semantic tag, the bytes a device pulls and the pull commands; the client
 * script keeps them current as cells are selected. A table needs no per-image style, which the
 * Content-Security-Policy would not allow anyway.
 *
 * A field may reach row and column 9999, so a page shows at most WINDOW x WINDOW cells at a
 * time, with links that move the window. What a selection costs is computed from every
 * allotment, on or off screen: the client reads them from a JSON block (not a script: it never
 * runs) rather than from the cells.
 */
import type { FC } from "hono/jsx";
import { selects, type Rect } from "../../../core/tdfs/label.ts";
import { formatBytes } from "../format.ts";
import type { FieldView } from "../images.ts";
import { cellKey, type FieldData, type PlatformField, type SelectionSummary } from "../selection.ts";

/** Fields wider than this start zoomed out, so that a 64 × 64 field fits a screen. */
const COMPACT_COLUMNS = 12;
/** The most rows, and columns, one page shows. */
export const WINDOW = 100;

/** The first row and column on screen. */
export interface GridOrigin {
  r0: number;
  c0: number;
}

export const FieldGrid: FC<{
  platform: string;
  field: FieldView;
  data: PlatformField;
  hidden: boolean;
  rects: readonly Rect[];
  origin: GridOrigin;
  /** The page's address without r0/c0, for the links that move the window. */
  query: URLSearchParams;
}> = ({ platform, field, data, hidden, rects, origin, query }) => {
  const byKey = new Map(field.cells.map((c) => [cellKey(c.row, c.col), c]));
  const r0 = Math.min(origin.r0, Math.max(0, field.rows - WINDOW));
  const c0 = Math.min(origin.c0, Math.max(0, field.cols - WINDOW));
  const rows = range(r0, Math.min(field.rows, r0 + WINDOW));
  const cols = range(c0, Math.min(field.cols, c0 + WINDOW));
  const previous = data.previous;
  return (
    <section
      class="platform-field"
      data-platform={platform}
      data-r0={r0}
      data-c0={c0}
      data-rows={rows.length}
      data-cols={cols.length}
      hidden={hidden}
    >
      <script type="application/json" class="field-data" dangerouslySetInnerHTML={{ __html: fieldJson(data) }} />
      {field.rows > WINDOW || field.cols > WINDOW ? (
        <WindowNav field={field} r0={r0} c0={c0} shown={[rows.length, cols.length]} query={query} />
      ) : null}
      <div class="grid-scroll">
        <table
          class={`field zoom-${field.cols > COMPACT_COLUMNS ? 1 : 3}`}
          tabindex={0}
          aria-label={`Field of ${platform}: ${field.rows} rows by ${field.cols} columns. Arrows move, Enter starts a rectangle, Shift+Enter adds one, Shift+arrows grow it, Escape clears.`}
          aria-multiselectable="true"
          role="grid"
        >
          <thead>
            <tr>
              <th scope="col" class="corner">
                row\col
              </th>
              {cols.map((c) => (
                <th scope="col">{c}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr>
                <th scope="row">{r}</th>
                {cols.map((c) => {
                  const cell = byKey.get(cellKey(r, c));
                  const prev = previous?.cells.get(cellKey(r, c));
                  const changed = previous !== undefined && (prev ?? "") !== (cell?.digest ?? "");
                  const selected = selects(rects, r, c);
                  const classes = [
                    cell ? `cell ${cell.compression}` : "hole",
                    changed ? "changed" : "",
                    selected ? "sel" : "",
                  ];
                  return cell ? (
                    <td
                      class={classes.filter(Boolean).join(" ")}
                      data-r={r}
                      data-c={c}
                      data-cell={`${r}.${c}`}
                      data-digest={cell.digest}
                      data-size={cell.size}
                      data-comp={cell.compression}
                      data-prev={prev}
                      title={`(${r},${c}) ${formatBytes(cell.size)} ${cell.compression}${changed ? ", changed" : ""}`}
                      role="gridcell"
                      aria-selected={selected ? "true" : "false"}
                    >
                      <span class="size">{formatBytes(cell.size)}</span>
                      <span class="comp">{cell.compression}</span>
                    </td>
                  ) : (
                    <td
                      class={classes.filter(Boolean).join(" ")}
                      data-r={r}
                      data-c={c}
                      data-prev={prev}
                      title={`(${r},${c}) hole${changed ? ", changed" : ""}`}
                      role="gridcell"
                    ></td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
};

/** Links that move the window by half its size; the client keeps their selection current. */
const WindowNav: FC<{ field: FieldView; r0: number; c0: number; shown: [number, number]; query: URLSearchParams }> = ({
  field,
  r0,
  c0,
  shown,
  query,
}) => {
  const step = WINDOW / 2;
  const link = (label: string, r: number, c: number, enabled: boolean) => {
    const q = new URLSearchParams(query);
    q.set("r0", String(Math.max(0, r)));
    q.set("c0", String(Math.max(0, c)));
    return enabled ? (
      <a href={`?${q.toString()}`} data-window="1">
        {label}
      </a>
    ) : (
      <span class="disabled">{label}</span>
    );
  };
  return (
    <nav class="window" aria-label="Part of the field on screen">
      <span>
        rows {r0}–{r0 + shown[0] - 1} of {field.rows}, columns {c0}–{c0 + shown[1] - 1} of {field.cols}
      </span>{" "}
      {link("▲ rows", r0 - step, c0, r0 > 0)} {link("▼ rows", r0 + step, c0, r0 + shown[0] < field.rows)}{" "}
      {link("◀ columns", r0, c0 - step, c0 > 0)} {link("▶ columns", r0, c0 + step, c0 + shown[1] < field.cols)}
    </nav>
  );
};

/** What the client needs to cost any selection (FieldData), as JSON safe inside a <script> element. */
function fieldJson(data: PlatformField): string {
  const out: FieldData = {
    base: data.base.map((b) => [b.digest, b.size]),
    cells: data.cells.map((c) => [c.row, c.col, c.digest, c.size]),
  };
  if (data.previous) {
    out.previous = {
      base: data.previous.base,
      cells: [...data.previous.cells].map(([key, digest]) => {
        const [row, col] = key.split(".").map(Number) as [number, number];
        return [row, col, digest];
      }),
    };
  }
  // `<` never appears raw, so no `</script>` can end the element early.
  return JSON.stringify(out).replace(/</g, "\\u003c");
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

export const SelectionPanel: FC<{ summary: SelectionSummary; compareTag?: string }> = ({ summary, compareTag }) => (
  <section class="selection" id="selection" aria-live="polite">
    <h2>Selection</h2>
    <p id="sel-problem" class="problem" hidden={summary.problem === undefined}>
      {summary.problem ?? ""}
    </p>
    <dl class="figures">
      <dt>Semantic tag</dt>
      <dd>
        <code id="sel-ref" data-label={summary.label}>
          {summary.problem === undefined ? summary.reference : ""}
        </code>
      </dd>
      <dt>A device pulls</dt>
      <dd id="sel-bytes" data-bytes={summary.bytes}>
        {formatBytes(summary.bytes)} ({summary.allotments} allotment{summary.allotments === 1 ? "" : "s"} + base layers)
      </dd>
      {compareTag !== undefined ? (
        <>
          <dt>Update from {compareTag}</dt>
          <dd id="sel-update" data-bytes={summary.updateBytes ?? 0}>
            {formatBytes(summary.updateBytes ?? 0)} of layers to fetch, plus manifests and config
          </dd>
        </>
      ) : null}
    </dl>
    <ul class="commands" id="sel-commands">
      {summary.commands.map((cmd) => (
        <li data-tool={cmd.tool}>
          <code>{cmd.text}</code>
          <button type="button" class="copy">
            Copy
          </button>
        </li>
      ))}
    </ul>
  </section>
);
