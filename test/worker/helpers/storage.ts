/**
 * Looks into the registry's R2 bucket, for the few facts the HTTP API cannot show: that a blob is
 * stored once, that a failed upload left nothing behind. Keys come from the Worker's own key list.
 */
import { env } from "cloudflare:workers";
import type { Digest } from "../../../core/oci/digest.ts";
import { keys } from "../../../worker/storage/keys.ts";

/** Every key under a prefix. */
export async function keysUnder(prefix: string): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.BLOBS.list({ prefix, ...(cursor ? { cursor } : {}) });
    out.push(...page.objects.map((o) => o.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return out;
}

/** The objects stored for a blob's bytes under `blobs/` (content-addressed: at most one). */
export function blobObjects(digest: Digest): Promise<string[]> {
  return keysUnder(keys.blob(digest));
}

export async function isLinked(repo: string, digest: Digest): Promise<boolean> {
  return (await env.BLOBS.head(keys.blobLink(repo, digest))) !== null;
}

/** Everything an upload session may have stored: its state, its tail, its multipart data. */
export async function uploadLeftovers(uuid: string): Promise<string[]> {
  const state = await keysUnder(keys.upload(uuid));
  const data = await keysUnder(keys.data(uuid));
  return [...state, ...data];
}
