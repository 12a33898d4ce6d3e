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
import { FieldError, parseField, type Field } from "../../core/tdfs/field.ts";
import type { AllotmentFacts } from "../../core/tdfs/partition.ts";
import { canonicalSelection, LabelError, splitSemanticTag } from "../../core/tdfs/label.ts";
import { partitionImage, selectionOf, type PartitionSource } from "../../core/tdfs/partition-image.ts";
import { rememberedPartition, rememberPartition, tagDigest } from "../storage/edge-reads.ts";
import type { StoredManifest } from "../storage/manifests.ts";
import type { Store } from "../storage/store.ts";
import type { Mirror } from "../upstream/mirror.ts";
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
  const baseDigest = await tagDigest(store, name, split.base);
  if (!baseDigest) throw notFound(`base tag "${split.base}" of semantic tag "${tag}" does not exist`, { tag });
  // Asked at this location lately: answered with no round trip to the bucket or KV.
  const here = await rememberedPartition(store, name, baseDigest, split.label);
  if (here) return here;
  const answer = await fromKvOrDerived({ store, name, tag, split, baseDigest });
  rememberPartition(store, name, baseDigest, split.label, answer);
  return answer;
}

/** One semantic tag asked of one repository, its base tag resolved. */
interface Asked {
  store: Store;
  name: string;
  tag: string;
  split: { base: string; label: string };
  baseDigest: Digest;
}

/**
 * The partition from KV, or computed and stored: what every location asks on its first request.
 * A label seen before is answered from KV without reading the image: as cheap as a plain GET. Its
 * derived objects are checked after the response, and stored again if the collector took them, so
 * that the platform manifests and configs the answer names are there when fetched.
 */
async function fromKvOrDerived(q: Asked): Promise<StoredManifest> {
  const { store, name } = q;
  const seen = await fromKv(store, await labelKey(q));
  if (!seen) return derive(q);
  store.later(
    (async () => {
      if (!(await store.derived.touchManifest(name, seen.digest))) await derive(q);
    })(),
  );
  return seen;
}

function labelKey(q: Asked): Promise<string> {
  return q.store.partitionCache.key(q.name, q.baseDigest, `label:${q.split.label}`);
}

/** Computes the partition, stores its derived objects and remembers the answer in KV. */
async function derive(q: Asked): Promise<StoredManifest> {
  const { store, name, tag, split, baseDigest } = q;
  const labelKeyOf = await labelKey(q);
  const root =
    (await store.manifests.get(name, baseDigest)) ?? (await store.mirror(name)?.manifest(baseDigest)) ?? null;
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
    await remember(store, labelKeyOf, same);
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
  await remember(store, labelKeyOf, answer);
  return answer;
}

/** What the registry stores, as core's partition function reads it. */
function storeSource(store: Store, name: string): PartitionSource {
  const mirror = store.mirror(name);
  if (mirror) return mirrorSource(mirror);
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

/**
 * A mirrored image, as its upstream serves it: manifests, configs and fields are fetched (and kept)
 * as the partition needs them, and each selected allotment's size and compression come from a
 * ranged GET of its first bytes. No other allotment is asked for, and none is fetched whole.
 */
function mirrorSource(mirror: Mirror): PartitionSource {
  return {
    manifest: (digest) => mirror.manifest(digest),
    config: (digest) => mirror.smallBlob(digest),
    field: async (_manifest, fieldDigest) => {
      try {
        return parseField(await mirror.smallBlob(fieldDigest));
      } catch (e) {
        if (e instanceof FieldError) throw new RegistryError("MANIFEST_INVALID", `invalid 2dfs field: ${e.message}`);
        throw e;
      }
    },
    facts: async (_field, selected) =>
      new Map(
        await Promise.all(
          selected.map(async (a): Promise<[string, AllotmentFacts]> => {
            const digest = `sha256:${a.digest}` as Digest;
            return [digest, await mirror.allotmentFacts(digest)];
          }),
        ),
      ),
  };
}

/** A partition remembered in KV. */
async function fromKv(store: Store, key: string): Promise<StoredManifest | null> {
  const entry = await store.partitionCache.get<CachedPartition>(key);
  return entry
    ? { digest: entry.digest, mediaType: entry.mediaType, bytes: new TextEncoder().encode(entry.body) }
    : null;
}

/** A partition remembered in KV, if its derived objects are still stored (the collector may have taken them). */
async function cached(store: Store, name: string, key: string): Promise<StoredManifest | null> {
  const entry = await fromKv(store, key);
  return entry && (await store.derived.touchManifest(name, entry.digest)) ? entry : null;
}

async function remember(store: Store, key: string, m: StoredManifest): Promise<void> {
  const entry: CachedPartition = { digest: m.digest, mediaType: m.mediaType, body: new TextDecoder().decode(m.bytes) };
  await store.partitionCache.put(key, entry);
}

function notFound(message: string, detail: Record<string, unknown>): RegistryError {
  return new RegistryError("MANIFEST_UNKNOWN", message, detail);
}
