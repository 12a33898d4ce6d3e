/**
 * Where the CLI reads a partition's inputs from, for core's partitionImage: the local store
 * (what was just built and pushed) or any registry. A registry is trusted for nothing: every
 * manifest and blob read is checked against its digest, and each selected allotment's size and
 * media type come from the blob itself (a ranged GET of its first bytes), as the registry that
 * partitions it records them at push.
 */
import pLimit from "p-limit";
import type { Digest } from "../../../core/oci/digest.ts";
import { layerMediaTypeFor, sniffCompression } from "../../../core/oci/media-types.ts";
import { parseField } from "../../../core/tdfs/field.ts";
import type { PartitionSource, SourceManifest } from "../../../core/tdfs/partition-image.ts";
import type { AllotmentFacts } from "../../../core/tdfs/partition.ts";
import type { OciLayout } from "../store/layout.ts";
import { layerMediaTypeOfFile } from "../store/sniff.ts";
import { LayoutSource, type ImageSource } from "../store/source.ts";
import type { RegistrySource } from "../store/registry-source.ts";

/** Ranged GETs of allotments at once: small requests, many of them for a large field. */
const FACTS_CONCURRENCY = 16;

/** Manifests, configs and fields through an ImageSource (layout or registry), each verified by digest. */
function imageSourcePartition(source: ImageSource, facts: PartitionSource["facts"]): PartitionSource {
  return {
    manifest: async (digest) => {
      const m = await source.manifest(digest);
      return { digest: m.digest, mediaType: m.mediaType, bytes: m.bytes } satisfies SourceManifest;
    },
    config: (digest) => source.blobBytes(digest),
    field: async (_manifest, digest) => parseField(await source.blobBytes(digest)),
    facts,
  };
}

/** A built image in the local store. */
export function layoutPartitionSource(layout: OciLayout): PartitionSource {
  return imageSourcePartition(new LayoutSource(layout), async (_field, selected) => {
    const facts = new Map<string, AllotmentFacts>();
    for (const a of selected) {
      const digest = `sha256:${a.digest}` as Digest;
      const size = await layout.blobSize(digest);
      if (size === undefined) throw new Error(`${layout.dir} lacks allotment ${digest}; rebuild the image`);
      facts.set(digest, { size, mediaType: await layerMediaTypeOfFile(layout.blobPath(digest)) });
    }
    return facts;
  });
}

/** An image in a registry, read as any client would read it. */
export function registryPartitionSource(source: RegistrySource): PartitionSource {
  const limit = pLimit(FACTS_CONCURRENCY);
  return imageSourcePartition(source, async (_field, selected) => {
    const entries = await Promise.all(
      selected.map((a) =>
        limit(async (): Promise<[string, AllotmentFacts]> => {
          const digest = `sha256:${a.digest}`;
          const { size, head } = await source.client.blobHead(source.ref.repository, digest, 4);
          return [digest, { size, mediaType: layerMediaTypeFor(sniffCompression(head)) }];
        }),
      ),
    );
    return new Map(entries);
  });
}
