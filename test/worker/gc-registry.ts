/**
 * Pushes images through the Worker's real routes (`exports.default.fetch`), for the garbage
 * collection tests. A 2DFS image reads as a sentence:
 *
 *   const a = await tdfsImage().base(shared, own).allotments(cellA, cellShared).push(repo, "a");
 *
 * The field blob is built with core/tdfs/field.ts, exactly as the builder writes it; allotments
 * are pushed as ordinary blobs and referenced only from inside the field.
 */
import { env, exports } from "cloudflare:workers";
import { sha256, type Digest } from "../../core/oci/digest.ts";
import type { Descriptor } from "../../core/oci/manifest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { fieldFromAllotments, serializeField } from "../../core/tdfs/field.ts";

const ORIGIN = "http://registry.test";

export function call(path: string, init?: RequestInit): Promise<Response> {
  return exports.default.fetch(new Request(ORIGIN + path, init));
}

export interface BlobBytes {
  digest: Digest;
  bytes: Uint8Array;
}

/** Random bytes that start like gzip, as a layer would. */
export async function randomBlob(size = 2048): Promise<BlobBytes> {
  const bytes = crypto.getRandomValues(new Uint8Array(size));
  bytes[0] = 0x1f;
  bytes[1] = 0x8b;
  return { digest: await sha256(bytes), bytes };
}

export async function pushBlob(repo: string, blob: BlobBytes): Promise<void> {
  const r = await call(`/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, { method: "POST", body: blob.bytes });
  if (r.status !== 201) throw new Error(`push of ${blob.digest} to ${repo}: ${r.status} ${await r.text()}`);
}

export async function pushManifest(repo: string, ref: string, manifest: object): Promise<Descriptor> {
  const bytes = new TextEncoder().encode(JSON.stringify(manifest));
  const mediaType = (manifest as { mediaType: string }).mediaType;
  const r = await call(`/v2/${repo}/manifests/${ref}`, {
    method: "PUT",
    headers: { "Content-Type": mediaType },
    body: bytes,
  });
  if (r.status !== 201) throw new Error(`push of manifest ${ref} to ${repo}: ${r.status} ${await r.text()}`);
  return { mediaType, digest: await sha256(bytes), size: bytes.byteLength };
}

const layer = (b: BlobBytes, mediaType: string = MediaType.OciLayerGzip): Descriptor => ({
  mediaType,
  digest: b.digest,
  size: b.bytes.byteLength,
});

export interface PushedImage {
  manifest: Descriptor;
  /** Body of the image manifest, for pushing it again. */
  body: object;
  config: BlobBytes;
  field: BlobBytes;
  /** Every blob of the image: config, base layers, field, allotments. */
  blobs: BlobBytes[];
}

export function tdfsImage(): TdfsImageBuilder {
  return new TdfsImageBuilder();
}

export class TdfsImageBuilder {
  #base: BlobBytes[] = [];
  #cells: BlobBytes[] = [];

  base(...layers: BlobBytes[]): this {
    this.#base.push(...layers);
    return this;
  }

  /** Allotments, placed at (0,0), (0,1), ... in the order given. */
  allotments(...cells: BlobBytes[]): this {
    this.#cells.push(...cells);
    return this;
  }

  async push(repo: string, tag: string | undefined): Promise<PushedImage> {
    const cells = await Promise.all(
      this.#cells.map(async (b, col) => ({
        row: 0,
        col,
        digest: b.digest.slice(7),
        diffid: (await sha256(b.bytes.subarray(2))).slice(7),
      })),
    );
    const fieldBytes = new TextEncoder().encode(serializeField(fieldFromAllotments(cells)));
    const field: BlobBytes = { digest: await sha256(fieldBytes), bytes: fieldBytes };
    const configBytes = new TextEncoder().encode(
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        rootfs: { type: "layers", diff_ids: this.#base.map((b) => b.digest) },
        nonce: crypto.randomUUID(),
      }),
    );
    const config: BlobBytes = { digest: await sha256(configBytes), bytes: configBytes };
    const blobs = [config, ...this.#base, field, ...this.#cells];
    for (const b of blobs) await pushBlob(repo, b);
    const body = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: layer(config, MediaType.OciConfig),
      layers: [...this.#base.map((b) => layer(b)), layer(field, MediaType.TdfsField)],
    };
    const manifest = await pushManifest(repo, tag ?? (await sha256(JSON.stringify(body))), body);
    return { manifest, body, config, field, blobs };
  }
}

/** An artifact (e.g. a signature) that names `subject`, with one blob of its own. */
export async function pushReferrer(
  repo: string,
  subject: Descriptor,
): Promise<{ manifest: Descriptor; blob: BlobBytes }> {
  const blob = await randomBlob(300);
  await pushBlob(repo, blob);
  const body = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    artifactType: "application/vnd.example.signature",
    config: { mediaType: MediaType.OciEmpty, digest: blob.digest, size: blob.bytes.byteLength },
    layers: [],
    subject,
  };
  const bytes = JSON.stringify(body);
  return { manifest: await pushManifest(repo, await sha256(bytes), body), blob };
}

/** Every key in the bucket, with what would show a change: size, etag and upload time. */
export async function snapshotBucket(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let cursor: string | undefined;
  do {
    const page = await env.BLOBS.list({ ...(cursor ? { cursor } : {}), include: ["customMetadata"] });
    for (const o of page.objects) {
      out.set(o.key, `${o.size} ${o.etag} ${o.uploaded.getTime()} ${JSON.stringify(o.customMetadata)}`);
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return out;
}

export async function keysUnder(prefix: string): Promise<Set<string>> {
  return new Set([...(await snapshotBucket()).keys()].filter((k) => k.startsWith(prefix)));
}

export async function wipeBucket(): Promise<void> {
  const all = [...(await snapshotBucket()).keys()];
  for (let i = 0; i < all.length; i += 1000) await env.BLOBS.delete(all.slice(i, i + 1000));
}

/** Pulls a blob through the route and checks its bytes. */
export async function pullDigest(repo: string, digest: Digest): Promise<Digest | number> {
  const r = await call(`/v2/${repo}/blobs/${digest}`);
  if (r.status !== 200) return r.status;
  return sha256(new Uint8Array(await r.arrayBuffer()));
}

/** Lets the clock pass the upload times of everything written so far (the collection's cutoff is exclusive). */
export async function tick(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 5));
}
