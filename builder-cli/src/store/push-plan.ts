/**
 * Describes an image for the registry client to push or copy: every blob (allotments included,
 * with their size and the media type their bytes call for) and every manifest, children first.
 */
import { Readable } from "node:stream";
import type { ReadableStream } from "node:stream/web";
import type { BlobSource, ImageToPush } from "../registry/image.ts";
import { imageBlobs, imageManifests } from "./blobs.ts";
import type { ImageGraph } from "./graph.ts";
import type { OciLayout } from "./layout.ts";
import { layerMediaTypeOfFile } from "./sniff.ts";

/** A built image in a local layout, ready for RegistryClient.pushImage. */
export async function pushPlanFromLayout(
  layout: OciLayout,
  graph: ImageGraph,
  tag: string,
  mountFrom?: string,
): Promise<ImageToPush> {
  const blobs: BlobSource[] = await Promise.all(
    imageBlobs(graph).map(async (b): Promise<BlobSource> => {
      const size = await layout.blobSize(b.digest);
      if (size === undefined) throw new Error(`${layout.dir} lacks blob ${b.digest}; rebuild the image`);
      const mediaType = b.mediaType ?? (await layerMediaTypeOfFile(layout.blobPath(b.digest)));
      return {
        digest: b.digest,
        size,
        mediaType,
        open: () => Readable.toWeb(layout.openBlob(b.digest)) as ReadableStream<Uint8Array>,
        openAt: (offset: number) => Readable.toWeb(layout.openBlob(b.digest, offset)) as ReadableStream<Uint8Array>,
      };
    }),
  );
  return { tag, blobs, manifests: imageManifests(graph), ...(mountFrom ? { mountFrom } : {}) };
}
