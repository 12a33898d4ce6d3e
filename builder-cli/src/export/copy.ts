/**
 * `copy SRC DST` between registries, allotments included (stock tools copy only what manifests
 * reference, and allotments are referenced only from inside the field). The image is staged in
 * a temporary layout: each blob is verified against its digest on the way in, and the push then
 * knows every size, which a field does not record for allotments.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { PushReport } from "../registry/image.ts";
import { BlobLocations } from "../registry/blob-locations.ts";
import { RegistryClient, type PushEvent } from "../registry/client.ts";
import type { ImageRef } from "../registry/ref.ts";
import type { AuthOptions } from "../registry/auth.ts";
import { imageBlobs, imageManifests } from "../store/blobs.ts";
import { loadImage } from "../store/graph.ts";
import { OciLayout } from "../store/layout.ts";
import { blobLocationsDir } from "../store/paths.ts";
import { pushPlanFromLayout } from "../store/push-plan.ts";
import type { RegistrySource } from "../store/registry-source.ts";

export async function copyImage(
  src: RegistrySource,
  dst: ImageRef,
  auth?: AuthOptions,
  onEvent?: (e: PushEvent) => void,
): Promise<PushReport> {
  const graph = await loadImage(src, src.reference, [], { keepAll: true });
  const staging = await mkdtemp(path.join(os.tmpdir(), "2dfs-copy-"));
  try {
    const layout = await OciLayout.create(staging);
    for (const b of imageBlobs(graph)) await layout.writeStream(b.digest, await src.openBlob(b.digest));
    for (const m of imageManifests(graph)) await layout.writeBytes(m.bytes);
    const client = new RegistryClient({
      registry: dst.registry,
      plainHttp: dst.plainHttp,
      locations: await BlobLocations.open(blobLocationsDir(), dst.registry),
      ...(auth ? { auth } : {}),
      ...(onEvent ? { onEvent } : {}),
    });
    // Without a tag of its own, DST takes SRC's, as skopeo does.
    const tag = dst.tag ?? src.ref.tag ?? "latest";
    return await client.pushImage(dst.repository, await pushPlanFromLayout(layout, graph, tag));
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
