/**
 * The partition of a whole image (an index or a single manifest) for a semantic tag's selection.
 * This is the one definition of what the registry answers a semantic tag with: the Worker computes
 * it from what it stores, and the CLI from a local layout or from what any registry serves, so a
 * signer can sign a partition before asking for it, and a verifier can recompute it trusting only
 * the signed source (docs/signing.md).
 *
 * Reads go through a PartitionSource; nothing is written here.
 */
import type { Digest } from "../oci/digest.ts";
import { imageIndexSchema, imageManifestSchema, type ImageManifest } from "../oci/manifest.ts";
import { isIndexMediaType } from "../oci/media-types.ts";
import { MAX_COORDINATE, type Allotment, type Field } from "./field.ts";
import {
  ALL_PARTITION,
  canonicalSelection,
  namedPartitions,
  parseLabel,
  selectAllotments,
  type Rect,
} from "./label.ts";
import {
  findFieldLayer,
  partitionIndex,
  partitionManifest,
  type AllotmentFactsLookup,
  type Content,
} from "./partition.ts";

/** A manifest as stored: its digest, media type and exact bytes. */
export interface SourceManifest {
  digest: Digest;
  mediaType: string;
  bytes: Uint8Array;
}

/** Where a partition's inputs are read from: a registry's store, a local layout, a remote registry. */
export interface PartitionSource {
  /** A child manifest of the image by digest; null when the source does not hold it. */
  manifest(digest: Digest): Promise<SourceManifest | null>;
  config(digest: Digest): Promise<Uint8Array>;
  field(manifest: ImageManifest, fieldDigest: Digest): Promise<Field>;
  /** The size and layer media type of each allotment of `field` that is selected. */
  facts(field: Digest, selected: readonly Allotment[]): Promise<AllotmentFactsLookup>;
}

/** One platform manifest of the partition, and the stored manifest it was computed from. */
export interface DerivedManifest {
  source: Digest;
  mediaType: string;
  manifest: Content;
  config: Content;
  allotments: Allotment[];
}

export type ImagePartition =
  | {
      kind: "partition";
      /** The answer to the semantic tag: the partitioned index, or the one partitioned manifest. */
      root: Content & { mediaType: string };
      /** Every platform manifest that was rewritten (for a single manifest, the root itself). */
      manifests: DerivedManifest[];
      selection: string;
    }
  | { kind: "nothing-selected"; selection: string }
  | { kind: "not-2dfs"; reason: string };

const ALL_LABEL = `0.0.${MAX_COORDINATE}.${MAX_COORDINATE}`;

/**
 * The rectangles a label selects in an image: coordinates, names from the root's
 * `2dfs.partition.<name>` annotations, and `all` for the whole field unless the image names a
 * partition "all" itself. Throws LabelError.
 */
export function selectionOf(label: string, root: Pick<SourceManifest, "bytes">): Rect[] {
  return parseLabel(label, { [ALL_PARTITION]: ALL_LABEL, ...namedPartitions(annotationsOf(parseJson(root.bytes))) });
}

/**
 * The partition of `root` for `rects`. Every child of an index that carries a field is rewritten,
 * one whose cells are all unselected to its base alone; children without a field (attestations,
 * other artifacts) and nested indexes stay as they are.
 */
export async function partitionImage(
  root: SourceManifest,
  rects: readonly Rect[],
  source: PartitionSource,
): Promise<ImagePartition> {
  const selection = canonicalSelection(rects);
  if (!isIndexMediaType(root.mediaType)) {
    const manifest = imageManifestSchema.parse(parseJson(root.bytes));
    if (!findFieldLayer(manifest)) return { kind: "not-2dfs", reason: "the manifest has no field layer" };
    const part = await partitionChild(root, manifest, rects, source, false);
    if (!part) return { kind: "nothing-selected", selection };
    return { kind: "partition", root: { ...part.manifest, mediaType: root.mediaType }, manifests: [part], selection };
  }

  const index = imageIndexSchema.parse(parseJson(root.bytes));
  const parts: DerivedManifest[] = [];
  let fields = 0;
  for (const entry of index.manifests) {
    if (isIndexMediaType(entry.mediaType)) continue;
    const child = await source.manifest(entry.digest);
    if (!child || isIndexMediaType(child.mediaType)) continue;
    const manifest = imageManifestSchema.parse(parseJson(child.bytes));
    if (!findFieldLayer(manifest)) continue;
    fields++;
    const part = await partitionChild(child, manifest, rects, source, true);
    if (part) parts.push(part);
  }
  if (fields === 0) return { kind: "not-2dfs", reason: "no manifest in the index carries a field" };
  if (parts.every((p) => p.allotments.length === 0)) return { kind: "nothing-selected", selection };
  const out = await partitionIndex(root.bytes, new Map(parts.map((p) => [p.source, p.manifest])));
  return { kind: "partition", root: { ...out, mediaType: root.mediaType }, manifests: parts, selection };
}

async function partitionChild(
  stored: SourceManifest,
  manifest: ImageManifest,
  rects: readonly Rect[],
  source: PartitionSource,
  allowEmpty: boolean,
): Promise<DerivedManifest | null> {
  const fieldDigest = findFieldLayer(manifest)!.digest;
  const field = await source.field(manifest, fieldDigest);
  const selected = selectAllotments(field, rects);
  if (selected.length === 0 && !allowEmpty) return null;
  const [configBytes, facts] = await Promise.all([
    source.config(manifest.config.digest),
    source.facts(fieldDigest, selected),
  ]);
  const part = await partitionManifest({
    manifest,
    manifestBytes: stored.bytes,
    configBytes,
    field,
    facts,
    selection: rects,
    allowEmpty,
  });
  if (part.kind === "nothing-selected") return null;
  return {
    source: stored.digest,
    mediaType: stored.mediaType,
    manifest: part.manifest,
    config: part.config,
    allotments: part.allotments,
  };
}

function annotationsOf(json: unknown): Record<string, string> | undefined {
  const a = (json as { annotations?: unknown }).annotations;
  return a && typeof a === "object" ? (a as Record<string, string>) : undefined;
}

function parseJson(bytes: Uint8Array): unknown {
  return JSON.parse(new TextDecoder().decode(bytes));
}
