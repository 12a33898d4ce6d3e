/**
 * A 2DFS image for the partition benchmarks: a rows x cols field of tiny distinct allotments (the
 * registry never unpacks one, so 64 random bytes each will do), one base layer, and an index
 * tagged `v1` over the manifest that carries the field.
 */
import { randomBytes } from "node:crypto";
import pLimit from "p-limit";
import { MediaType } from "../core/oci/media-types.ts";
import { fieldFromAllotments, serializeField } from "../core/tdfs/field.ts";
import { pushBlob, sha256Of } from "../test/helpers/oci.ts";

const PUSH_CONCURRENCY = 8;

/**
 * Pushes the image to `repo`. `putManifest` runs the PUT of the manifest with the field (the
 * request that records the field's facts), so that the caller can time it. Answers how long the
 * allotments took to push.
 */
export async function pushFieldImage(
  base: string,
  repo: string,
  rows: number,
  cols: number,
  putManifest: (put: () => Promise<void>) => Promise<void> = (put) => put(),
): Promise<{ pushSeconds: number }> {
  const n = rows * cols;
  const started = performance.now();
  const limit = pLimit(PUSH_CONCURRENCY);
  const cells = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      limit(async () => {
        const digest = await pushBlob(base, repo, randomBytes(64));
        return { row: Math.floor(i / cols), col: i % cols, digest: digest.slice(7), diffid: digest.slice(7) };
      }),
    ),
  );
  const pushSeconds = (performance.now() - started) / 1000;
  const field = new TextEncoder().encode(serializeField(fieldFromAllotments(cells)));
  const layer = randomBytes(1024);
  const [fieldDigest, layerDigest] = await Promise.all([pushBlob(base, repo, field), pushBlob(base, repo, layer)]);
  const config = JSON.stringify({
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: [layerDigest] },
    history: [{ created_by: "base" }],
  });
  const configDigest = await pushBlob(base, repo, new TextEncoder().encode(config));
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: configDigest, size: Buffer.byteLength(config) },
    layers: [
      { mediaType: MediaType.OciLayerTar, digest: layerDigest, size: layer.byteLength },
      { mediaType: MediaType.TdfsField, digest: fieldDigest, size: field.byteLength },
    ],
  });
  const manifestDigest = sha256Of(manifest);
  await putManifest(() => put(`${base}/v2/${repo}/manifests/${manifestDigest}`, manifest, MediaType.OciManifest));
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [
      {
        mediaType: MediaType.OciManifest,
        digest: manifestDigest,
        size: Buffer.byteLength(manifest),
        platform: { os: "linux", architecture: "amd64" },
      },
    ],
  });
  await put(`${base}/v2/${repo}/manifests/v1`, index, MediaType.OciIndex);
  return { pushSeconds };
}

async function put(url: string, body: string, contentType: string): Promise<void> {
  const res = await fetch(url, { method: "PUT", headers: { "Content-Type": contentType }, body });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`PUT ${url}: ${res.status} ${text}`);
}
