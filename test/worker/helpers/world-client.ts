/**
 * A registry client for a harness World (interleave.ts): the requests the storage scenarios make
 * (monolithic pushes, sessions, mounts, manifests) and the reads that check them.
 */
import { expect } from "vitest";
import { sha256, type Digest } from "../../../core/oci/digest.ts";
import { MediaType } from "../../../core/oci/media-types.ts";
import type { World } from "./interleave.ts";

export interface Blob {
  bytes: Uint8Array;
  digest: Digest;
}

export async function blobOf(text: string): Promise<Blob> {
  const bytes = new TextEncoder().encode(text.repeat(8));
  return { bytes, digest: await sha256(bytes) };
}

/** A Location's path and query, for the next request to the same World. */
export const path = (location: string | null): string => new URL(location!).pathname + new URL(location!).search;

export async function openSession(w: World, repo: string): Promise<string> {
  const r = await w.request(`/v2/${repo}/blobs/uploads/`, { method: "POST" });
  expect(r.status).toBe(202);
  return path(r.headers.get("Location"));
}

export async function patch(w: World, location: string, bytes: Uint8Array, start?: number): Promise<Response> {
  const headers: Record<string, string> = { "Content-Length": String(bytes.byteLength) };
  if (start !== undefined) headers["Content-Range"] = `${start}-${start + bytes.byteLength - 1}`;
  return w.request(location, { method: "PATCH", headers, body: bytes.slice() });
}

/** A PUT closing a session, with the last chunk in its body when one is given. */
export function close(w: World, location: string, digest: Digest, body?: Uint8Array): Promise<Response> {
  const sep = location.includes("?") ? "&" : "?";
  return w.request(`${location}${sep}digest=${digest}`, {
    method: "PUT",
    ...(body ? { headers: { "Content-Length": String(body.byteLength) }, body: body.slice() } : {}),
  });
}

export function monolithic(w: World, repo: string, blob: Blob): Promise<Response> {
  return w.request(`/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, {
    method: "POST",
    headers: { "Content-Length": String(blob.bytes.byteLength) },
    body: blob.bytes.slice(),
  });
}

export function mount(w: World, repo: string, digest: Digest, from?: string): Promise<Response> {
  return w.request(`/v2/${repo}/blobs/uploads/?mount=${digest}${from ? `&from=${from}` : ""}`, { method: "POST" });
}

/** Status and the digest of the body, for a blob GET. */
export async function pull(w: World, repo: string, digest: Digest): Promise<number | Digest> {
  const r = await w.request(`/v2/${repo}/blobs/${digest}`);
  if (r.status !== 200) return r.status;
  return sha256(new Uint8Array(await r.arrayBuffer()));
}

export function manifestOf(config: Blob, layers: Blob[]): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: config.digest, size: config.bytes.byteLength },
    layers: layers.map((l) => ({ mediaType: MediaType.OciLayerGzip, digest: l.digest, size: l.bytes.byteLength })),
  });
}

export function putManifest(
  w: World,
  repo: string,
  ref: string,
  body: string | Uint8Array,
  mediaType: string = MediaType.OciManifest,
): Promise<Response> {
  return w.request(`/v2/${repo}/manifests/${ref}`, {
    method: "PUT",
    headers: { "Content-Type": mediaType },
    body: typeof body === "string" ? body : body.slice(),
  });
}

const KEEP_CONFIG = "config that keeps a blob referenced";

/**
 * Pushes a tagged manifest that references the blob, so that the collector keeps the repository's
 * link: a blob nothing references is garbage once older than the grace period, by design.
 */
export async function keep(w: World, repo: string, blob: Blob, tag = "kept"): Promise<void> {
  const config = await blobOf(KEEP_CONFIG);
  expect((await monolithic(w, repo, config)).status).toBe(201);
  expect((await putManifest(w, repo, tag, manifestOf(config, [blob]))).status).toBe(201);
}
