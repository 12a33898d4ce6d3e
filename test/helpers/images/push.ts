/**
 * Pushing built images to a registry, the way a plain client does: every blob monolithically
 * (`POST ?digest=` with the body), then each manifest an index lists by its digest, then the top
 * manifest by tag or digest. Every answer is checked (201 and the digest the registry names), so a
 * push that fails fails the test that asked for it. Pure: where the requests go is the caller's
 * `RegistryTarget` (the Worker itself in workerd, HTTP in Node).
 */
import { isDigest, sha256, type Digest } from "../../../core/oci/digest.ts";
import type { BuiltManifest, StoredBlob } from "./types.ts";

export interface RegistryTarget {
  /** Sends a request for `path` (`/v2/...`) to the registry. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** How many blobs go at once. */
  concurrency: number;
}

/** A registry at `base` (`http://127.0.0.1:8787`), over HTTP, four blobs at a time. */
export function overHttp(base: string, concurrency = 4): RegistryTarget {
  return { fetch: (path, init) => fetch(`${base}${path}`, init), concurrency };
}

export interface PushOptions {
  /** Ask first (HEAD) and send only the blobs the repository lacks, as skopeo and docker do. */
  skipPresent?: boolean;
}

/** Pushes the manifest and all it needs; `reference` defaults to its digest. */
export async function push<B extends StoredBlob>(
  target: RegistryTarget,
  repo: string,
  m: BuiltManifest<B>,
  reference: string = m.digest,
  options: PushOptions = {},
): Promise<void> {
  await pushContents(target, repo, m, options);
  await pushManifest(target, repo, reference, m);
}

/** Pushes everything the manifest needs (blobs, and the manifests an index lists), but not the manifest itself. */
export async function pushContents<B extends StoredBlob>(
  target: RegistryTarget,
  repo: string,
  m: BuiltManifest<B>,
  options: PushOptions = {},
): Promise<void> {
  const blobs = new Map<Digest, B>();
  const collect = (x: BuiltManifest<B>): void => {
    x.children.forEach(collect);
    for (const b of x.blobs) blobs.set(b.digest, b);
  };
  collect(m);
  await inParallel([...blobs.values()], target.concurrency, async (b) => {
    if (options.skipPresent && (await isPresent(target, repo, b.digest))) return;
    await pushBlob(target, repo, b);
  });
  await pushChildren(target, repo, m);
}

/** The manifests an index lists, by digest, each after its own children. */
async function pushChildren<B extends StoredBlob>(target: RegistryTarget, repo: string, m: BuiltManifest<B>) {
  for (const child of m.children) {
    await pushChildren(target, repo, child);
    await pushManifest(target, repo, child.digest, child);
  }
}

export async function pushBlob(target: RegistryTarget, repo: string, blob: StoredBlob): Promise<void> {
  const res = await target.fetch(`/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream" },
    body: (await blob.read()) as Uint8Array<ArrayBuffer>,
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`pushing blob ${blob.digest} to ${repo}: ${res.status} ${text}`);
  const named = res.headers.get("Docker-Content-Digest");
  if (named !== blob.digest) throw new Error(`blob ${blob.digest} was stored in ${repo} as ${named}`);
}

/**
 * PUTs the manifest's bytes under `reference`. The registry names a manifest pushed by digest by
 * that digest, and one pushed by tag by its sha256.
 */
export async function pushManifest<B extends StoredBlob>(
  target: RegistryTarget,
  repo: string,
  reference: string,
  m: BuiltManifest<B>,
): Promise<void> {
  const res = await target.fetch(`/v2/${repo}/manifests/${reference}`, {
    method: "PUT",
    headers: { "Content-Type": m.mediaType },
    body: m.bytes as Uint8Array<ArrayBuffer>,
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`pushing manifest ${repo}:${reference}: ${res.status} ${text}`);
  const expected = isDigest(reference) ? reference : await sha256(m.bytes);
  const named = res.headers.get("Docker-Content-Digest");
  if (named !== expected) throw new Error(`manifest ${repo}:${reference} stored as ${named}, pushed ${expected}`);
}

async function isPresent(target: RegistryTarget, repo: string, digest: Digest): Promise<boolean> {
  const res = await target.fetch(`/v2/${repo}/blobs/${digest}`, { method: "HEAD" });
  await res.body?.cancel();
  return res.status === 200;
}

async function inParallel<T>(items: readonly T[], width: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await run(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(width, items.length)) }, worker));
}
