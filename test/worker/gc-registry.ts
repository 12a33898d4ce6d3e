/**
 * The registry as the garbage collection tests drive it: the Worker's real routes
 * (`exports.default.fetch`), 2DFS images that share layers and allotments, built with the
 * test-image builder (test/helpers/images/), and the bucket read back key by key. A 2DFS image
 * reads as a sentence:
 *
 *   const a = await tdfsImageOf([shared, own], [cellA, cellShared]).pushTo(worker, repo, "a");
 */
import { env, exports } from "cloudflare:workers";
import { sha256, type Digest } from "../../core/oci/digest.ts";
import type { Descriptor } from "../../core/oci/manifest.ts";
import { anImage, type ImageBuilder } from "../helpers/images/builder.ts";
import type { BuiltLayer, MemoryBlob } from "../helpers/images/types.ts";
import { worker } from "./helpers/registry.ts";

const ORIGIN = "http://registry.test";

export function call(path: string, init?: RequestInit): Promise<Response> {
  return exports.default.fetch(new Request(ORIGIN + path, init));
}

export async function pushBlob(repo: string, blob: MemoryBlob): Promise<void> {
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

/**
 * A single-manifest 2DFS image over these base layers, whose allotments are `cells` at (0,0),
 * (0,1), ... in the order given. Its `blobs` are the config, the base layers, the field and the
 * allotments, in that order.
 */
export function tdfsImageOf(base: readonly BuiltLayer[], cells: readonly BuiltLayer[]): ImageBuilder<MemoryBlob> {
  const builder = anImage()
    .index(false)
    .layersFrom(() => base);
  cells.forEach((layer, col) => builder.allotmentFrom(0, col, layer));
  return builder;
}

/** An artifact (e.g. a signature) that names `subject`, with one blob of its own: its config. */
export async function pushReferrer(
  repo: string,
  subject: Descriptor,
): Promise<{ manifest: Descriptor; blob: MemoryBlob }> {
  const img = await anImage().artifactType("application/vnd.example.signature").subject(subject).pushTo(worker, repo);
  return { manifest: img.descriptor, blob: img.blobs[0]! };
}

/** Every key in the bucket (or under `prefix`), with what would show a change: size, etag and upload time. */
export async function snapshotBucket(prefix = ""): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let cursor: string | undefined;
  do {
    const page = await env.BLOBS.list({ prefix, ...(cursor ? { cursor } : {}), include: ["customMetadata"] });
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
