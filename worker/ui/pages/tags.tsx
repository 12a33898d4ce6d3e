/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
/** `/ui/<name>`: the repository's tags, newest first, each with digest, platforms, size and field. */
import type { FC } from "hono/jsx";
import { formatBytes, shortDigest } from "../format.ts";
import { imageBytes, type ImageView } from "../images.ts";

export interface TagRow {
  tag: string;
  uploaded: Date;
  image: ImageView | null;
}

export const Tags: FC<{ repo: string; rows: TagRow[]; total: number; next?: string }> = ({
  repo,
  rows,
  total,
  next,
}) => (
  <>
    <h1>{repo}</h1>
    <p class="meta">
      {total} tag{total === 1 ? "" : "s"}, newest first
    </p>
    <div class="table-scroll">
      <table class="tags" id="tags">
        <thead>
          <tr>
            <th scope="col">Tag</th>
            <th scope="col">Pushed</th>
            <th scope="col">Digest</th>
            <th scope="col">Platforms</th>
            <th scope="col">Size</th>
            <th scope="col">Field</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr data-tag={r.tag}>
              <td>
                <a href={`/ui/${repo}:${r.tag}`}>{r.tag}</a>
              </td>
              <td>
                <time datetime={r.uploaded.toISOString()}>
                  {r.uploaded.toISOString().replace("T", " ").slice(0, 19)}
                </time>
              </td>
              <td>
                <code title={r.image?.digest}>{r.image ? shortDigest(r.image.digest) : "missing"}</code>
              </td>
              <td>{r.image?.platforms.map((p) => p.platform).join(", ")}</td>
              <td data-bytes={r.image ? String(imageBytes(r.image)) : ""}>
                {r.image ? formatBytes(imageBytes(r.image)) : ""}
              </td>
              <td class="has-field">{r.image ? fieldText(r.image) : ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
    {next ? (
      <p>
        <a href={next} rel="next">
          Older tags
        </a>
      </p>
    ) : null}
  </>
);

function fieldText(image: ImageView): string {
  const fields = image.platforms.flatMap((p) => (p.field ? [p.field] : []));
  if (fields.length === 0) return "no";
  const f = fields[0]!;
  return `${f.rows}×${f.cols}, ${f.cells.length} allotment${f.cells.length === 1 ? "" : "s"}`;
}
