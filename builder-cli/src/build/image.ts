/**
 * Puts a built 2DFS image together in a layout: per base platform, a manifest of the base layers
 * with the field appended last and the base config unchanged (layers = diff_ids + 1,
 * docs/format.md §3);
 * an OCI index on top naming the image and its partitions.
 */
import type { Descriptor } from "../../../core/oci/manifest.ts";
import { MediaType } from "../../../core/oci/media-types.ts";
import { NAMED_PARTITION_PREFIX } from "../../../core/tdfs/label.ts";
import type { OciLayout } from "../store/layout.ts";
import type { BasePlatform } from "./base.ts";

/** The index annotation the reference builder names its images with. */
export const IMAGE_NAME_ANNOTATION = "2dfs.image.name";

const encoder = new TextEncoder();

export interface AssembleInput {
  base: BasePlatform[];
  field: Descriptor;
  imageName: string;
  partitions: Record<string, string>;
}

/** Writes the manifests and the index into `layout`; returns the index's descriptor. */
export async function assembleImage(layout: OciLayout, input: AssembleInput): Promise<Descriptor> {
  const manifests: Descriptor[] = [];
  for (const p of input.base) {
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: p.config.mediaType, digest: p.config.digest, size: p.config.size },
      layers: [...p.layers, input.field],
    };
    const { digest, size } = await layout.writeBytes(encoder.encode(JSON.stringify(manifest)));
    manifests.push({ mediaType: MediaType.OciManifest, digest, size, platform: p.platform });
  }
  const annotations: Record<string, string> = { [IMAGE_NAME_ANNOTATION]: input.imageName };
  for (const name of Object.keys(input.partitions).sort())
    annotations[NAMED_PARTITION_PREFIX + name] = input.partitions[name]!;
  const index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests, annotations };
  const { digest, size } = await layout.writeBytes(encoder.encode(JSON.stringify(index)));
  return { mediaType: MediaType.OciIndex, digest, size };
}
