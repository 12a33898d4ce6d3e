/**
 * The blobs an image is made of, allotments included: configs, layers and the field of each
 * platform manifest, plus every allotment the fields reference. Stock tools walk only manifest
 * references and would miss the allotments (docs/format.md §3), so push and copy list them from here.
 */
import type { Digest } from "../../../core/oci/digest.ts";
import type { Descriptor } from "../../../core/oci/manifest.ts";
import type { ImageGraph } from "./graph.ts";

export interface BlobRef {
  digest: Digest;
  /** Known for everything a manifest describes; allotment sizes are not in the field. */
  size?: number;
  mediaType?: string;
}

export function imageBlobs(graph: ImageGraph): BlobRef[] {
  const out = new Map<string, BlobRef>();
  const add = (d: Descriptor): void => {
    if (!d.urls?.length) out.set(d.digest, { digest: d.digest, size: d.size, mediaType: d.mediaType });
  };
  for (const p of graph.platforms) {
    add(p.manifest.config);
    for (const l of p.manifest.layers) add(l);
    for (const a of p.field?.field.allotments ?? []) {
      const digest = `sha256:${a.digest}` as Digest;
      if (!out.has(digest)) out.set(digest, { digest });
    }
  }
  return [...out.values()];
}

/** Manifests in push order: children first, the root (index) last. */
export function imageManifests(graph: ImageGraph): { digest: Digest; mediaType: string; bytes: Uint8Array }[] {
  const children = graph.index
    ? graph.platforms.map((p) => ({
        digest: p.descriptor.digest,
        mediaType: p.descriptor.mediaType,
        bytes: p.manifestBytes,
      }))
    : [];
  return [...children, { digest: graph.root.digest, mediaType: graph.root.mediaType, bytes: graph.root.bytes }];
}
