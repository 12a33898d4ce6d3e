/**
 * `inspect REF`: what a 2DFS image holds and what each semantic tag would pull. Every row and
 * column gets a tag, as do the partitions the image names; each lists the allotments it selects
 * and their total size (a blob that several cells share counted once, as a pull fetches it once),
 * computed by the same selection code the registry uses. Given a semantic tag, it also says what
 * that tag pulls.
 */
import type { Digest } from "../../../core/oci/digest.ts";
import {
  canonicalSelection,
  LabelError,
  namedPartitions,
  parseLabel,
  selectAllotments,
  type Rect,
} from "../../../core/tdfs/label.ts";
import type { Field } from "../../../core/tdfs/field.ts";
import { IMAGE_NAME_ANNOTATION } from "../build/image.ts";
import { loadImage } from "../store/graph.ts";
import { formatPlatform } from "../store/platform.ts";
import type { ImageSource } from "../store/source.ts";
import { InputError } from "../spec/errors.ts";

export interface CellInfo {
  row: number;
  col: number;
  digest: Digest;
  diffid: Digest;
  /** Unknown when the source cannot tell a blob's size without fetching it. */
  size?: number;
  mediaType?: string;
  /** Where the allotment's files land in the image, when the source can tell without a download. */
  paths?: string[];
}

export interface SemanticTag {
  kind: "row" | "column" | "partition" | "requested";
  tag: string;
  selection: string;
  allotments: { row: number; col: number }[];
  bytes?: number;
  /** A named partition whose value does not parse: the registry would refuse its tag. */
  error?: string;
}

/** Where the image was read: the local image store, an OCI layout, or the registry. */
export interface InspectOrigin {
  kind: "local" | "layout" | "registry";
  /** The store or layout directory, or the registry's URL. */
  location: string;
}

export interface InspectResult {
  reference: string;
  origin: InspectOrigin;
  /** What the semantic tag given to inspect pulls. */
  requested?: SemanticTag;
  digest: Digest;
  imageName?: string;
  platforms: { platform: string; manifest: Digest; field?: Digest }[];
  rows: number;
  cols: number;
  cells: CellInfo[];
  tags: SemanticTag[];
}

/** A blob's size and, where the source can tell without fetching it, the media type its bytes call for. */
export type BlobFacts = (digest: Digest) => Promise<{ size: number; mediaType?: string; paths?: string[] } | undefined>;

export async function inspectImage(
  source: ImageSource,
  reference: string,
  tag: string,
  facts: BlobFacts,
  origin: InspectOrigin,
  label?: string,
): Promise<InspectResult> {
  const graph = await loadImage(source, reference);
  const withField = graph.platforms.filter((p) => p.field);
  if (withField.length === 0) throw new InputError(`${source.name}: not a 2DFS image (no manifest has a field layer)`);
  // Every platform carries the same field when built here; show the first one's.
  const field: Field = withField[0]!.field!.field;
  const cells: CellInfo[] = await Promise.all(
    field.allotments.map(async (a) => {
      const digest = `sha256:${a.digest}` as Digest;
      const f = await facts(digest);
      return { row: a.row, col: a.col, digest, diffid: `sha256:${a.diffid}` as Digest, ...(f ?? {}) };
    }),
  );
  const rows = Math.max(-1, ...field.allotments.map((a) => a.row)) + 1;
  const cols = Math.max(-1, ...field.allotments.map((a) => a.col)) + 1;
  const bySel = (kind: SemanticTag["kind"], name: string, rects: Rect[]): SemanticTag => {
    const chosen = selectAllotments(field, rects);
    // A blob several cells share is pulled once: count each digest once.
    const blobs = new Map(chosen.map((a) => [a.digest, cells.find((c) => c.row === a.row && c.col === a.col)?.size]));
    const sizes = [...blobs.values()];
    const bytes = sizes.every((s) => s !== undefined) ? sizes.reduce((n: number, s) => n + s!, 0) : undefined;
    return {
      kind,
      tag: `${tag}--${name}`,
      selection: canonicalSelection(rects),
      allotments: chosen.map((a) => ({ row: a.row, col: a.col })),
      ...(bytes !== undefined ? { bytes } : {}),
    };
  };
  const tags: SemanticTag[] = [];
  for (let r = 0; r < rows; r++)
    tags.push(
      bySel("row", `${r}.0.${r}.${Math.max(0, cols - 1)}`, [{ x1: r, y1: 0, x2: r, y2: Math.max(0, cols - 1) }]),
    );
  for (let c = 0; c < cols; c++)
    tags.push(
      bySel("column", `0.${c}.${Math.max(0, rows - 1)}.${c}`, [{ x1: 0, y1: c, x2: Math.max(0, rows - 1), y2: c }]),
    );
  const named = namedPartitions(graph.index?.annotations);
  for (const name of Object.keys(named).sort()) {
    try {
      tags.push(bySel("partition", name, parseLabel(name, named)));
    } catch (e) {
      tags.push({
        kind: "partition",
        tag: `${tag}--${name}`,
        selection: named[name]!,
        allotments: [],
        error: (e as Error).message,
      });
    }
  }
  let requested: SemanticTag | undefined;
  if (label !== undefined) {
    try {
      requested = bySel("requested", label, parseLabel(label, named));
    } catch (e) {
      if (e instanceof LabelError) throw new InputError(`${tag}--${label}: ${e.message}`);
      throw e;
    }
  }
  const imageName = graph.index?.annotations?.[IMAGE_NAME_ANNOTATION];
  return {
    reference: `${source.name}:${tag}`,
    origin,
    ...(requested ? { requested } : {}),
    digest: graph.root.digest,
    ...(imageName ? { imageName } : {}),
    platforms: graph.platforms.map((p) => ({
      platform: formatPlatform(p.platform),
      manifest: p.descriptor.digest,
      ...(p.field ? { field: p.field.descriptor.digest } : {}),
    })),
    rows,
    cols,
    cells,
    tags,
  };
}
