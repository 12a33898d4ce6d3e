/**
 * The reference walk, shared by marking and by repair: from root manifests to everything they
 * keep alive. An index keeps its child manifests; an image manifest keeps its config and layers;
 * a 2DFS field layer keeps every allotment listed inside the field (allotments are referenced
 * nowhere else, so a collector that does not read the field deletes them); any manifest keeps
 * its subject and every referrer that names it.
 */
import type { Digest } from "../../core/oci/digest.ts";
import { parseManifest } from "../../core/oci/manifest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { parseField } from "../../core/tdfs/field.ts";

export interface ManifestBytes {
  mediaType: string;
  bytes: Uint8Array;
}

/** Where the walk reads from. `manifest` answers null for a digest the repository does not hold. */
export interface WalkSource {
  manifest(d: Digest): Promise<ManifestBytes | null>;
  /** A field blob's bytes; null when no copy of the blob exists any more. */
  field(d: Digest): Promise<Uint8Array | null>;
  referrersOf(d: Digest): readonly Digest[];
}

export interface Marks {
  /** Manifests of the repository that were reached. */
  manifests: Set<Digest>;
  /** Every blob digest reached: configs, layers, fields, allotments, and index children. */
  blobs: Set<Digest>;
}

/** Something reachable could not be read: the repository must not be swept on a partial mark. */
export class UnreadableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnreadableError";
  }
}

/** Workers allow six connections at once per invocation; more would only queue. */
const PARALLEL = 6;

export async function walk(roots: Iterable<Digest>, source: WalkSource, marks: Marks): Promise<void> {
  const seen = new Set<Digest>();
  let frontier = [...new Set(roots)];
  while (frontier.length > 0) {
    const next: Digest[] = [];
    for (let i = 0; i < frontier.length; i += PARALLEL) {
      const batch = frontier.slice(i, i + PARALLEL).filter((d) => !seen.has(d));
      for (const d of batch) seen.add(d);
      const found = await Promise.all(batch.map((d) => visit(d, source, marks)));
      for (const refs of found) for (const r of refs) if (!seen.has(r)) next.push(r);
    }
    frontier = next;
  }
}

/** Marks one manifest and what it references; returns the manifests to visit next. */
async function visit(d: Digest, source: WalkSource, marks: Marks): Promise<Digest[]> {
  const m = await source.manifest(d);
  if (!m) return []; // Dangling reference: nothing stored here to keep.
  marks.manifests.add(d);
  let parsed;
  try {
    parsed = parseManifest(m.bytes, m.mediaType || null);
  } catch (e) {
    throw new UnreadableError(`manifest ${d} cannot be parsed: ${e instanceof Error ? e.message : String(e)}`);
  }
  const next: Digest[] = [...source.referrersOf(d)];
  if (parsed.manifest.subject) next.push(parsed.manifest.subject.digest);
  if (parsed.kind === "index") {
    for (const child of parsed.manifest.manifests) {
      next.push(child.digest);
      // An index may also list plain blobs (artifacts); keeping a link that is a manifest costs nothing.
      marks.blobs.add(child.digest);
    }
    return next;
  }
  const { config, layers } = parsed.manifest;
  marks.blobs.add(config.digest);
  for (const layer of layers) {
    marks.blobs.add(layer.digest);
    // The field is the last layer by the format; any layer of that type is read, to be safe.
    if (layer.mediaType === MediaType.TdfsField) await markAllotments(layer.digest, source, marks);
  }
  return next;
}

async function markAllotments(field: Digest, source: WalkSource, marks: Marks): Promise<void> {
  const bytes = await source.field(field);
  if (!bytes) return;
  try {
    for (const a of parseField(bytes).allotments) marks.blobs.add(`sha256:${a.digest}`);
  } catch (e) {
    throw new UnreadableError(`field ${field} cannot be parsed: ${e instanceof Error ? e.message : String(e)}`);
  }
}
