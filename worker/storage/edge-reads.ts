/**
 * The reads on a pull's path, answered from what this location remembers (edge-memo.ts) when it
 * can, and from the bucket otherwise, which is then remembered after the response. Of content,
 * only what was found is remembered: "not there" always asks the bucket again, so a push is seen
 * at once everywhere (tags, remembered only with TAG_TTL_SECONDS, are the one exception). Writes
 * and deletes of these things purge them here (`forget*`).
 */
import type { Digest } from "../../core/oci/digest.ts";
import type { BlobInfo } from "./blobs.ts";
import { edgeKeys } from "./keys.ts";
import type { StoredManifest } from "./manifests.ts";
import type { Store } from "./store.ts";

/**
 * A tag's digest: remembered for TAG_TTL_SECONDS, which is 0 (ask every time) unless set. That a
 * tag does not exist is remembered too: every pull of `v1--jetson` first asks whether a literal tag
 * of that name exists (a literal tag always wins), and the answer is nearly always no. A push here
 * purges it; one elsewhere is seen within the TTL, as a re-pointed tag is.
 */
export async function tagDigest(store: Store, name: string, tag: string): Promise<Digest | null> {
  const ttl = store.config.tagTtlSeconds;
  const key = edgeKeys.tag(name, tag);
  if (ttl > 0) {
    const seen = await store.memo.json<{ digest: Digest | null }>(key);
    if (seen) return seen.digest;
  }
  const mirror = store.mirror(name);
  const digest = mirror ? await mirror.tag(tag) : await store.manifests.resolveTag(name, tag);
  if (ttl > 0) store.memo.keepJson(key, { digest }, ttl);
  return digest;
}

/** A manifest by digest, pushed or derived (a partition's): its bytes never change. */
export async function manifestByDigest(store: Store, name: string, digest: Digest): Promise<StoredManifest | null> {
  const key = edgeKeys.manifest(name, digest);
  const seen = await store.memo.match(key);
  if (seen) {
    return {
      digest,
      mediaType: seen.headers.get("content-type") ?? "",
      bytes: new Uint8Array(await seen.arrayBuffer()),
    };
  }
  const m =
    (await store.manifests.get(name, digest)) ??
    (await store.derived.getManifest(name, digest)) ??
    (await store.mirror(name)?.manifest(digest)) ??
    null;
  if (!m) return null;
  store.memo.keep(key, m.bytes.slice(), { "Content-Type": m.mediaType });
  return { digest: m.digest, mediaType: m.mediaType, bytes: m.bytes };
}

/**
 * Where a blob of the repository is to be read from: its link, or a derived object (a partition's
 * config). For GETs; a HEAD that may precede a push goes to the bucket (blobs.ts `vouch`).
 */
export async function blobToServe(store: Store, name: string, digest: Digest): Promise<BlobInfo | null> {
  const key = edgeKeys.blob(name, digest);
  const seen = await store.memo.json<BlobInfo>(key);
  if (seen) return seen;
  const info = (await store.blobs.stat(name, digest)) ?? (await store.derived.statBlob(name, digest));
  if (info) store.memo.keepJson(key, info);
  return info;
}

/** A partition's answer for (image digest, label): fixed by them. */
export async function rememberedPartition(
  store: Store,
  name: string,
  image: Digest,
  label: string,
): Promise<StoredManifest | null> {
  const hit = await store.memo.json<{ digest: Digest; mediaType: string; body: string }>(
    edgeKeys.partition(name, image, label),
  );
  return hit ? { digest: hit.digest, mediaType: hit.mediaType, bytes: new TextEncoder().encode(hit.body) } : null;
}

export function rememberPartition(store: Store, name: string, image: Digest, label: string, m: StoredManifest): void {
  store.memo.keepJson(edgeKeys.partition(name, image, label), {
    digest: m.digest,
    mediaType: m.mediaType,
    body: new TextDecoder().decode(m.bytes),
  });
}

export function forgetTags(store: Store, name: string, tags: readonly string[]): Promise<void> {
  return store.memo.purge(...tags.map((t) => edgeKeys.tag(name, t)));
}

export function forgetManifest(store: Store, name: string, digest: Digest): Promise<void> {
  return store.memo.purge(edgeKeys.manifest(name, digest));
}

export function forgetBlob(store: Store, name: string, digest: Digest): Promise<void> {
  return store.memo.purge(edgeKeys.blob(name, digest));
}
