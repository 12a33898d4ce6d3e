/**
 * Partitions on request: `repo:tag--x1.y1.x2.y2[--...]` or `repo:tag--<name>` becomes an ordinary
 * OCI image (base layers + the selected allotments) that any stock runtime can pull.
 *
 * resolve the base tag -> parse the label -> look up KV (stored digest + canonical selection) ->
 * on a miss compute from the recorded field facts -> persist derived objects -> remember in KV.
 * A computed answer is immutable (fixed by its inputs), which is exactly what KV may hold.
 */
import type { Digest } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import { imageIndexSchema, imageManifestSchema, type ImageManifest } from "../../core/oci/manifest.ts";
import { isIndexMediaType } from "../../core/oci/media-types.ts";
import { MAX_COORDINATE } from "../../core/tdfs/field.ts";
import {
  canonicalSelection,
  LabelError,
  namedPartitions,
  parseLabel,
  splitSemanticTag,
  type Rect,
} from "../../core/tdfs/label.ts";
import { findFieldLayer, partitionIndex, partitionManifest, type Content } from "../../core/tdfs/partition.ts";
import type { StoredManifest } from "../storage/manifests.ts";
import type { Store } from "../storage/store.ts";
import { loadFieldFacts, recordFieldFacts } from "./facts.ts";

/**
 * `tag--all` pulls the whole field flattened into one runnable image, unless the image names a
 * partition "all" itself.
 */
export const ALL_PARTITION = "all";
const ALL_LABEL = `0.0.${MAX_COORDINATE}.${MAX_COORDINATE}`;

interface CachedPartition {
  digest: Digest;
  mediaType: string;
  body: string;
}

/** A partition for a semantic tag, or null when `tag` is not one (no `--`). */
export async function producePartition(store: Store, name: string, tag: string): Promise<StoredManifest | null> {
  const split = splitSemanticTag(tag);
  if (!split) return null;
  const baseDigest = await store.manifests.resolveTag(name, split.base);
  if (!baseDigest) throw notFound(`base tag "${split.base}" of semantic tag "${tag}" does not exist`, { tag });
  // A label seen before is answered from KV without reading the image: as cheap as a plain GET.
  const labelKey = await store.partitionCache.key(name, baseDigest, `label:${split.label}`);
  const seen = await cached(store, name, labelKey);
  if (seen) return seen;

  const root = await store.manifests.get(name, baseDigest);
  if (!root) throw notFound(`base tag "${split.base}" points to a missing manifest`, { tag });
  let rects: Rect[];
  try {
    rects = parseLabel(split.label, {
      [ALL_PARTITION]: ALL_LABEL,
      ...namedPartitions(annotationsOf(parseJson(root.bytes))),
    });
  } catch (e) {
    if (e instanceof LabelError) throw notFound(e.message, { tag, reason: e.reason });
    throw e;
  }
  // Any label that selects the same cells shares one computation.
  const canonical = canonicalSelection(rects);
  const selectionKey = await store.partitionCache.key(name, baseDigest, `selection:${canonical}`);
  const same = await cached(store, name, selectionKey);
  if (same) {
    await remember(store, labelKey, same);
    return same;
  }

  const result = isIndexMediaType(root.mediaType)
    ? await partitionOfIndex(store, name, root, rects)
    : await partitionOfManifest(store, name, root, rects);
  if (!result) throw notFound(`semantic tag "${tag}" selects no allotment of the field`, { tag, selection: canonical });
  const answer: StoredManifest = { digest: result.digest, mediaType: root.mediaType, bytes: result.bytes };
  await remember(store, selectionKey, answer);
  await remember(store, labelKey, answer);
  return answer;
}

/** A partition remembered in KV, if its derived objects are still stored (the collector may have taken them). */
async function cached(store: Store, name: string, key: string): Promise<StoredManifest | null> {
  const entry = await store.partitionCache.get<CachedPartition>(key);
  if (!entry || !(await store.derived.touchManifest(name, entry.digest))) return null;
  return { digest: entry.digest, mediaType: entry.mediaType, bytes: new TextEncoder().encode(entry.body) };
}

async function remember(store: Store, key: string, m: StoredManifest): Promise<void> {
  const entry: CachedPartition = { digest: m.digest, mediaType: m.mediaType, body: new TextDecoder().decode(m.bytes) };
  await store.partitionCache.put(key, entry);
}

/**
 * Partitions every child that carries a field; a child whose cells are all unselected keeps only
 * its base. Everything is computed before anything is stored, so a selection that picks nothing
 * writes nothing.
 */
async function partitionOfIndex(
  store: Store,
  name: string,
  root: StoredManifest,
  rects: Rect[],
): Promise<Content | null> {
  const index = imageIndexSchema.parse(parseJson(root.bytes));
  const parts: ChildPartition[] = [];
  let fields = 0;
  for (const entry of index.manifests) {
    const child = await store.manifests.get(name, entry.digest);
    if (!child || isIndexMediaType(child.mediaType)) continue;
    const manifest = imageManifestSchema.parse(parseJson(child.bytes));
    if (!findFieldLayer(manifest)) continue;
    fields++;
    const part = await partitionChild(store, name, child, manifest, rects, true);
    if (part) parts.push(part);
  }
  if (fields === 0) throw notFound("not a 2DFS image: no manifest in the index carries a field", {});
  if (parts.every((p) => p.allotments === 0)) return null;
  const out = await partitionIndex(
    root.bytes,
    new Map(parts.map((p) => [p.source, { digest: p.manifest.digest, size: p.manifest.size }])),
  );
  await Promise.all(parts.map((p) => persist(store, name, p)));
  await store.derived.putManifest(name, out, root.mediaType);
  return out;
}

async function partitionOfManifest(
  store: Store,
  name: string,
  root: StoredManifest,
  rects: Rect[],
): Promise<Content | null> {
  const manifest = imageManifestSchema.parse(parseJson(root.bytes));
  if (!findFieldLayer(manifest)) throw notFound("not a 2DFS image: the manifest has no field layer", {});
  const part = await partitionChild(store, name, root, manifest, rects, false);
  if (!part) return null;
  await persist(store, name, part);
  return part.manifest;
}

interface ChildPartition {
  source: Digest;
  mediaType: string;
  manifest: Content;
  config: Content;
  allotments: number;
}

/** One platform manifest, computed from its recorded field facts; nothing is stored here. */
async function partitionChild(
  store: Store,
  name: string,
  stored: StoredManifest,
  manifest: ImageManifest,
  rects: Rect[],
  allowEmpty: boolean,
): Promise<ChildPartition | null> {
  const fieldDigest = findFieldLayer(manifest)!.digest;
  let facts = await loadFieldFacts(store, name, fieldDigest);
  if (!facts) {
    // Pushed before facts were recorded: record them now, once.
    await recordFieldFacts(store, name, manifest);
    facts = await loadFieldFacts(store, name, fieldDigest);
  }
  if (!facts) throw new Error(`field facts for ${fieldDigest} could not be recorded`);
  const configInfo = await store.blobs.stat(name, manifest.config.digest);
  if (!configInfo) throw notFound("the image config is missing", { digest: manifest.config.digest });
  const configBytes = new Uint8Array(await new Response(await store.blobs.open(configInfo)).arrayBuffer());
  const part = await partitionManifest({
    manifest,
    manifestBytes: stored.bytes,
    configBytes,
    field: facts.field,
    facts: facts.facts,
    selection: rects,
    allowEmpty,
  });
  if (part.kind === "nothing-selected") return null;
  return {
    source: stored.digest,
    mediaType: stored.mediaType,
    manifest: part.manifest,
    config: part.config,
    allotments: part.allotments.length,
  };
}

async function persist(store: Store, name: string, p: ChildPartition): Promise<void> {
  await store.derived.putBlob(name, p.config);
  await store.derived.putManifest(name, p.manifest, p.mediaType);
}

function annotationsOf(json: unknown): Record<string, string> | undefined {
  const a = (json as { annotations?: unknown }).annotations;
  return a && typeof a === "object" ? (a as Record<string, string>) : undefined;
}

function parseJson(bytes: Uint8Array): unknown {
  return JSON.parse(new TextDecoder().decode(bytes));
}

function notFound(message: string, detail: Record<string, unknown>): RegistryError {
  return new RegistryError("MANIFEST_UNKNOWN", message, detail);
}
