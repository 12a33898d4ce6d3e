/**
 * What a partition needs to know about a field, recorded once when its manifest is pushed: every
 * allotment's cell, digests, size and media type. Computing any partition later reads this one
 * object instead of the field blob plus one object per allotment, so its cost does not grow with
 * the field.
 */
import type { Digest } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import type { ImageManifest } from "../../core/oci/manifest.ts";
import { layerMediaTypeFor } from "../../core/oci/media-types.ts";
import { FieldError, parseField, type Allotment, type Field } from "../../core/tdfs/field.ts";
import { checkFieldConfig, findFieldLayer, type AllotmentFacts } from "../../core/tdfs/partition.ts";
import type { BlobInfo } from "../storage/blobs.ts";
import type { Store } from "../storage/store.ts";

/** A field with its allotments' facts, as stored under `_fields/`. */
export interface FieldFacts {
  field: Field;
  facts: Record<string, AllotmentFacts>;
}

/** A field blob larger than this is refused: 10,000 allotments take about 1.5 MB. */
const FIELD_MAX_BYTES = 32 * 1024 * 1024;

/**
 * Validates a pushed 2DFS manifest (field parses, config has layers - 1 diff_ids, every allotment
 * is in the repository) and records its facts. Does nothing for an ordinary manifest. The checks
 * run on every push, also of a field recorded before: an earlier push proves nothing about this
 * manifest's config, nor that every allotment is still in the repository.
 */
export async function recordFieldFacts(store: Store, name: string, manifest: ImageManifest): Promise<void> {
  const fieldLayer = findFieldLayer(manifest);
  if (!fieldLayer) return;
  const [fieldBytes, configBytes] = await Promise.all([
    readBlob(store, name, fieldLayer.digest, FIELD_MAX_BYTES),
    readBlob(store, name, manifest.config.digest, FIELD_MAX_BYTES),
  ]);
  checkFieldConfig(manifest, configBytes);
  let field: Field;
  try {
    field = parseField(fieldBytes);
  } catch (e) {
    if (e instanceof FieldError) {
      throw new RegistryError("MANIFEST_INVALID", `invalid 2dfs field: ${e.message}`, { field: fieldLayer.digest });
    }
    throw e;
  }
  const infos = await allotmentInfos(store, name, field.allotments);
  const facts: Record<string, AllotmentFacts> = {};
  for (const a of field.allotments) {
    const digest = `sha256:${a.digest}` as Digest;
    const info = infos.get(digest);
    if (!info) {
      throw new RegistryError("MANIFEST_BLOB_UNKNOWN", `allotment (${a.row},${a.col}) is not in the repository`, {
        cell: { row: a.row, col: a.col },
        digest,
      });
    }
    facts[digest] = { size: info.size, mediaType: layerMediaTypeFor(info.compression) };
  }
  const record: FieldFacts = { field, facts };
  await store.facts.put(name, fieldLayer.digest, record);
}

export async function loadFieldFacts(store: Store, name: string, fieldDigest: Digest): Promise<FieldFacts | null> {
  return store.facts.get<FieldFacts>(name, fieldDigest);
}

async function readBlob(store: Store, name: string, digest: Digest, max: number): Promise<Uint8Array> {
  const info = await store.blobs.stat(name, digest);
  if (!info) throw new RegistryError("MANIFEST_BLOB_UNKNOWN", "manifest references an unknown blob", { digest });
  if (info.size > max) throw new RegistryError("MANIFEST_INVALID", "blob too large to read as JSON", { digest, max });
  return new Uint8Array(await new Response(await store.blobs.open(info)).arrayBuffer());
}

/** The repository's links for the given allotments. */
function allotmentInfos(store: Store, name: string, allotments: Allotment[]): Promise<Map<Digest, BlobInfo>> {
  return store.blobs.statMany(
    name,
    allotments.map((a) => `sha256:${a.digest}` as Digest),
  );
}
