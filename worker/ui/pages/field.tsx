/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
/**
 * The field as a grid, one table per platform: every allotment is a cell with
 * `data-cell="<row>.<col>"`, its size and compression; holes are empty cells. The selection
 * panel shows the semantic tag, the bytes a device pulls and the pull commands; the client
 * script keeps them current as cells are selected. A table needs no per-image style, which the
 * Content-Security-Policy would not allow anyway.
 */
import type { FC } from "hono/jsx";
import { selects, type Rect } from "../../../core/tdfs/label.ts";
import { formatBytes } from "../format.ts";
import type { FieldView } from "../images.ts";
import { cellKey, type PlatformField, type SelectionSummary } from "../selection.ts";

/** Fields wider than this start zoomed out, so that a 64 × 64 field fits a screen. */
const COMPACT_COLUMNS = 12;

export const FieldGrid: FC<{
  platform: string;
  field: FieldView;
  data: PlatformField;
  hidden: boolean;
  rects: readonly Rect[];
}> = ({ platform, field, data, hidden, rects }) => {
  const byKey = new Map(field.cells.map((c) => [cellKey(c.row, c.col), c]));
  const rows = [...Array(field.rows).keys()];
  const cols = [...Array(field.cols).keys()];
  const previous = data.previous;
  return (
    <section
      class="platform-field"
      data-platform={platform}
      data-base={data.base.map((b) => `${b.digest}:${b.size}`).join(" ")}
      data-prev-base={previous ? previous.base.join(" ") : undefined}
      hidden={hidden}
    >
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
                      title={`(${r},${c}) hole`}
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
