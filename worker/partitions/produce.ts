/**
 * Partitions on request: `repo:tag--x1.y1.x2.y2[--...]` or `repo:tag--<name>` becomes an ordinary
 * OCI image (base layers + the selected allotments) that any stock runtime can pull.
 *
 * resolve the base tag -> parse the label -> look up KV (stored digest + canonical selection) ->
 * on a miss compute with core's partitionImage from the recorded field facts -> persist derived
 * objects -> remember in KV. A computed answer is immutable (fixed by its inputs), which is
 * exactly what KV may hold.
 */
import type { Digest } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import type { ImageManifest } from "../../core/oci/manifest.ts";
import type { Field } from "../../core/tdfs/field.ts";
import { canonicalSelection, LabelError, splitSemanticTag } from "../../core/tdfs/label.ts";
import { partitionImage, selectionOf, type PartitionSource } from "../../core/tdfs/partition-image.ts";
import type { StoredManifest } from "../storage/manifests.ts";
import type { Store } from "../storage/store.ts";
import { loadFieldFacts, recordFieldFacts, type FieldFacts } from "./facts.ts";

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
  let rects;
  try {
    rects = selectionOf(split.label, root);
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

  const result = await partitionImage(root, rects, storeSource(store, name));
  if (result.kind === "not-2dfs") throw notFound(`not a 2DFS image: ${result.reason}`, {});
  if (result.kind === "nothing-selected") {
    throw notFound(`semantic tag "${tag}" selects no allotment of the field`, { tag, selection: canonical });
  }
  // Everything was computed before anything is stored, so a selection that picks nothing writes
  // nothing. Each derived manifest names what it was computed from: the collector keeps the
  // signatures of a partition while its source lives, and the registry's signer reads it back.
  await Promise.all(
    result.manifests.map(async (p) => {
      await store.derived.putBlob(name, p.config);
      if (p.manifest.digest !== result.root.digest) {
        await store.derived.putManifest(name, p.manifest, p.mediaType, {
          source: p.source,
          image: root.digest,
          selection: canonical,
        });
      }
    }),
  );
  await store.derived.putManifest(name, result.root, result.root.mediaType, {
    source: root.digest,
    image: root.digest,
    selection: canonical,
  });
  const answer: StoredManifest = { digest: result.root.digest, mediaType: root.mediaType, bytes: result.root.bytes };
  await remember(store, selectionKey, answer);
  await remember(store, labelKey, answer);
  return answer;
}

/** What the registry stores, as core's partition function reads it. */
function storeSource(store: Store, name: string): PartitionSource {
  const facts = new Map<Digest, Promise<FieldFacts>>();
  const factsOf = (manifest: ImageManifest | undefined, fieldDigest: Digest): Promise<FieldFacts> => {
    let p = facts.get(fieldDigest);
    if (!p) {
      p = (async () => {
        const found = await loadFieldFacts(store, name, fieldDigest);
        if (found) return found;
        if (!manifest) throw new Error(`field facts for ${fieldDigest} were asked before the field`);
        // Pushed before facts were recorded: record them now, once.
        await recordFieldFacts(store, name, manifest);
        const recorded = await loadFieldFacts(store, name, fieldDigest);
        if (!recorded) throw new Error(`field facts for ${fieldDigest} could not be recorded`);
        return recorded;
      })();
      facts.set(fieldDigest, p);
    }
    return p;
  };
  return {
    manifest: (digest) => store.manifests.get(name, digest),
    config: async (digest) => {
      const info = await store.blobs.stat(name, digest);
      if (!info) throw notFound("the image config is missing", { digest });
      return new Uint8Array(await new Response(await store.blobs.open(info)).arrayBuffer());
    },
    field: async (manifest, fieldDigest): Promise<Field> => (await factsOf(manifest, fieldDigest)).field,
    facts: async (fieldDigest) => (await factsOf(undefined, fieldDigest)).facts,
  };
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

function notFound(message: string, detail: Record<string, unknown>): RegistryError {
  return new RegistryError("MANIFEST_UNKNOWN", message, detail);
}
