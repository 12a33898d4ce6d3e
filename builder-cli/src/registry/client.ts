/**
 * An OCI distribution client for one registry: reads manifests and blobs (verified against their
 * digests) and pushes images, uploading only the blobs the registry lacks. Uses Node's global
 * fetch; every blob is streamed.
 */
import pLimit from "p-limit";
import { isSha256Digest, sha256 } from "../../../core/oci/digest.ts";
import { imageIndexSchema, type Descriptor } from "../../../core/oci/manifest.ts";
import { MANIFEST_MEDIA_TYPES, MediaType } from "../../../core/oci/media-types.ts";
import { cliAuthenticator, repositoryScope, type AuthOptions } from "./auth.ts";
import type { BlobLocations } from "./blob-locations.ts";
import type { PushEventHandler } from "./events.ts";
import { RegistryHttpError, Transport } from "./http.ts";
import type { BlobSource, ImageToPush, ManifestToPush, PushReport } from "./image.ts";
import { registryBaseUrl } from "./ref.ts";
import { DEFAULT_RETRY, type RetryPolicy } from "./retry.ts";
import { verifyDigest } from "./streams.ts";
import { BlobUploader, DEFAULT_CHUNK_SIZE, DEFAULT_MONOLITHIC_MAX } from "./upload.ts";
import { UploadStateStore } from "./upload-state.ts";

export type { AuthOptions } from "./auth.ts";
export type { PushEvent } from "./events.ts";

export interface RegistryClientOptions {
  /** host[:port], as in ImageRef.registry. */
  registry: string;
  plainHttp: boolean;
  auth?: AuthOptions;
  /** Blob uploads running at once (default 4). */
  concurrency?: number;
  onEvent?: PushEventHandler;
  /** Largest PATCH body (default 95 MB); the registry's OCI-Chunk-Max-Length lowers it. */
  chunkSize?: number;
  /** Blobs up to this size are uploaded in one request (default 8 MiB). */
  monolithicMax?: number;
  retry?: Partial<RetryPolicy>;
  /** Where open chunked uploads are remembered (default under $XDG_STATE_HOME). */
  uploadStateDir?: string;
  /** Repositories of this registry known to hold each blob: mounted from instead of uploading again. */
  locations?: BlobLocations;
  /**
   * Before uploading a blob no known repository could give, ask for a mount by digest alone: a
   * registry that holds it anywhere the caller may read mounts it, so a machine that never pushed
   * there (a fresh CI runner) still sends nothing twice. A refusal opens the session the upload
   * then uses.
   */
  mountAnywhere?: boolean;
}

/** Repositories a missing blob is tried from before it is uploaded. */
const MOUNT_CANDIDATES = 3;

/** Manifests are small; anything larger is refused rather than held in memory. */
const MANIFEST_MAX_BYTES = 4 * 1024 * 1024;
/** HEADs are cheap: check more blobs at once than are uploaded. */
const HEAD_CONCURRENCY = 8;

export class RegistryClient {
  readonly registry: string;
  readonly #t: Transport;
  readonly #uploader: BlobUploader;
  readonly #concurrency: number;
  readonly #emit: PushEventHandler;
  readonly #locations: BlobLocations | undefined;
  readonly #mountAnywhere: boolean;

  constructor(opts: RegistryClientOptions) {
    this.registry = opts.registry;
    this.#concurrency = Math.max(1, opts.concurrency ?? 4);
    this.#emit = opts.onEvent ?? (() => {});
    this.#locations = opts.locations;
    this.#mountAnywhere = opts.mountAnywhere === true;
    const retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.#t = new Transport(registryBaseUrl(opts.registry, opts.plainHttp), cliAuthenticator(opts.auth), retry);
    this.#uploader = new BlobUploader(
      this.#t,
      opts.registry,
      new UploadStateStore(opts.uploadStateDir),
      {
        chunkSize: opts.chunkSize ?? DEFAULT_CHUNK_SIZE,
        monolithicMax: opts.monolithicMax ?? DEFAULT_MONOLITHIC_MAX,
        retry,
      },
      this.#emit,
    );
  }

  /** A manifest by tag or digest, with every manifest media type accepted; its digest checked when pinned. */
  async getManifest(
    repo: string,
    reference: string,
  ): Promise<{ bytes: Uint8Array; mediaType: string; digest: string }> {
    const res = await this.#t.request({
      method: "GET",
      url: `/v2/${repo}/manifests/${reference}`,
      scopes: [repositoryScope(repo, "pull")],
      headers: { Accept: MANIFEST_MEDIA_TYPES.join(", ") },
      expect: [200],
    });
    if (Number(res.headers.get("content-length") ?? 0) > MANIFEST_MAX_BYTES) {
      await res.body?.cancel();
      throw new Error(`manifest ${repo}:${reference} is larger than ${MANIFEST_MAX_BYTES} bytes`);
    }
    const bytes = new Uint8Array(await res.arrayBuffer());
    const digest = await sha256(bytes);
    const claimed = res.headers.get("docker-content-digest");
    const expected = isSha256Digest(reference) ? reference : claimed && isSha256Digest(claimed) ? claimed : undefined;
    if (expected && expected !== digest) {
      throw new Error(`manifest ${repo}@${expected} arrived with digest ${digest}`);
    }
    const mediaType = (res.headers.get("content-type") ?? "").split(";")[0]!.trim() || mediaTypeInside(bytes);
    return { bytes, mediaType, digest };
  }

  /** A manifest as getManifest reads it, or null when the registry has no such tag or digest. */
  async findManifest(
    repo: string,
    reference: string,
  ): Promise<{ bytes: Uint8Array; mediaType: string; digest: string } | null> {
    try {
      return await this.getManifest(repo, reference);
    } catch (e) {
      if (e instanceof RegistryHttpError && e.status === 404) return null;
      throw e;
    }
  }

  /**
   * The referrers of a manifest (OCI 1.1), filtered by artifactType here as well, since a
   * registry may ignore the filter. A registry without the referrers API answers 404: none.
   */
  async referrers(repo: string, digest: string, artifactType?: string): Promise<Descriptor[]> {
    const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : "";
    let res: Response;
    try {
      res = await this.#t.request({
        method: "GET",
        url: `/v2/${repo}/referrers/${digest}${query}`,
        scopes: [repositoryScope(repo, "pull")],
        headers: { Accept: MediaType.OciIndex },
        expect: [200],
      });
    } catch (e) {
      if (e instanceof RegistryHttpError && e.status === 404) return [];
      throw e;
    }
    const index = imageIndexSchema.safeParse(await res.json().catch(() => undefined));
    if (!index.success) throw new Error(`the referrers of ${repo}@${digest} are not an image index`);
    return index.data.manifests.filter((d) => artifactType === undefined || d.artifactType === artifactType);
  }

  /**
   * A blob's size and its first `length` bytes, from one ranged GET: enough to tell its
   * compression without reading it.
   */
  async blobHead(repo: string, digest: string, length: number): Promise<{ size: number; head: Uint8Array }> {
    const res = await this.#t.request({
      method: "GET",
      url: `/v2/${repo}/blobs/${digest}`,
      scopes: [repositoryScope(repo, "pull")],
      headers: { Range: `bytes=0-${length - 1}` },
      expect: [200, 206],
    });
    const total = /\/(\d+)$/.exec(res.headers.get("content-range") ?? "")?.[1];
    const size = Number(res.status === 206 ? total : res.headers.get("content-length"));
    // A registry that ignores Range sends the whole blob: read only what is needed of it.
    const reader = res.body?.getReader();
    const head = new Uint8Array(length);
    let got = 0;
    while (reader && got < length) {
      const { done, value } = await reader.read();
      if (done) break;
      const take = value.subarray(0, length - got);
      head.set(take, got);
      got += take.length;
    }
    await reader?.cancel().catch(() => {});
    if (!Number.isSafeInteger(size) || size < 0) throw new Error(`blob ${digest} in ${repo} has no size`);
    return { size, head: head.subarray(0, got) };
  }

  async blobExists(repo: string, digest: string): Promise<boolean> {
    return this.#blobExists(repo, digest, [repositoryScope(repo, "pull")]);
  }

  /** A blob's size from a HEAD (no bytes fetched), or undefined when the repository lacks it. */
  async blobSize(repo: string, digest: string): Promise<number | undefined> {
    let res: Response;
    try {
      res = await this.#t.request({
        method: "HEAD",
        url: `/v2/${repo}/blobs/${digest}`,
        scopes: [repositoryScope(repo, "pull")],
        expect: [200],
      });
    } catch (e) {
      if (e instanceof RegistryHttpError && e.status === 404) return undefined;
      throw e;
    }
    const size = Number(res.headers.get("content-length") ?? Number.NaN);
    if (!Number.isSafeInteger(size) || size < 0)
      throw new Error(`HEAD of blob ${digest} in ${repo} gave no Content-Length`);
    return size;
  }

  /** The blob's bytes as they arrive; the stream fails at its end if they do not hash to `digest`. */
  async openBlob(repo: string, digest: string): Promise<ReadableStream<Uint8Array>> {
    const res = await this.#t.request({
      method: "GET",
      url: `/v2/${repo}/blobs/${digest}`,
      scopes: [repositoryScope(repo, "pull")],
      expect: [200],
    });
    if (!res.body) throw new Error(`blob ${digest} came without a body`);
    return verifyDigest(res.body, digest);
  }

  /** PUTs a manifest under a tag or its digest; returns the digest, checked against the registry's. */
  async putManifest(repo: string, reference: string, m: ManifestToPush): Promise<string> {
    const actual = await sha256(m.bytes);
    if (actual !== m.digest) throw new Error(`manifest declared as ${m.digest} hashes to ${actual}`);
    const res = await this.#t.request({
      method: "PUT",
      url: `/v2/${repo}/manifests/${reference}`,
      scopes: [repositoryScope(repo, "pull,push")],
      headers: { "Content-Type": m.mediaType },
      body: m.bytes,
      expect: [201, 200],
    });
    await res.body?.cancel();
    const stored = res.headers.get("docker-content-digest");
    if (stored && stored !== m.digest) {
      throw new Error(`the registry stored manifest ${m.digest} as ${stored}`);
    }
    this.#emit({ type: "manifest-pushed", digest: m.digest, reference, mediaType: m.mediaType });
    return m.digest;
  }

  /**
   * Pushes blobs the registry lacks, then the manifests in order: children by digest, the root by
   * its tag (or by digest without one). A missing blob is first mounted, when it can be, from
   * `mountFrom` or a repository the location index says holds it, then (with `mountAnywhere`) by
   * digest alone; a mount costs no upload.
   */
  async pushImage(repo: string, image: ImageToPush): Promise<PushReport> {
    const started = performance.now();
    const root = image.manifests.at(-1);
    if (!root) throw new Error("an image needs at least one manifest");
    const scopes = [repositoryScope(repo, "pull,push")];
    const locations = this.#locations;

    const blobs = uniqueByDigest(image.blobs);
    const heads = pLimit(HEAD_CONCURRENCY);
    const present = await Promise.all(blobs.map((b) => heads(() => this.#blobExists(repo, b.digest, scopes))));
    const missing = blobs.filter((_, i) => !present[i]);
    for (const b of blobs.filter((_, i) => present[i])) {
      locations?.record(b.digest, repo);
      this.#emit({ type: "blob-skipped", digest: b.digest, size: b.size });
    }

    const candidates = (digest: string): string[] =>
      [...new Set([image.mountFrom ?? "", ...(locations?.repositoriesOf(digest) ?? [])])]
        .filter((r) => r !== "" && r !== repo)
        .slice(0, MOUNT_CANDIDATES);
    const uploads = pLimit(this.#concurrency);
    const outcomes = await Promise.allSettled(
      missing.map((b) =>
        uploads(async () => {
          const outcome = await this.#uploader.upload(repo, b, scopes, {
            from: candidates(b.digest),
            anywhere: this.#mountAnywhere,
            onRefused: (from) => {
              if (from !== undefined) locations?.forget(b.digest, from);
            },
          });
          locations?.record(b.digest, repo);
          return outcome;
        }),
      ),
    );
    // What was learnt holds whether or not the push completes; a hint that cannot be saved only
    // costs a later push its mounts.
    await locations?.save().catch(() => {});
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === "rejected");
    if (failed) throw failed.reason;

    for (const m of image.manifests.slice(0, -1)) await this.putManifest(repo, m.digest, m);
    await this.putManifest(repo, image.tag ?? root.digest, root);

    const done = outcomes.map((o) => (o as PromiseFulfilledResult<Awaited<ReturnType<BlobUploader["upload"]>>>).value);
    const mounted = missing.filter((_, i) => done[i]!.kind === "mounted");
    return {
      blobsTotal: blobs.length,
      blobsSkipped: blobs.length - missing.length,
      blobsMounted: done.filter((o) => o.kind === "mounted").length,
      blobsUploaded: done.filter((o) => o.kind === "uploaded").length,
      // A mount moves no bytes: only uploads count.
      bytesUploaded: done.reduce((n, o) => n + (o.kind === "uploaded" ? o.bytesSent : 0), 0),
      bytesMounted: mounted.reduce((n, b) => n + b.size, 0),
      seconds: (performance.now() - started) / 1000,
      digest: root.digest,
    };
  }

  async #blobExists(repo: string, digest: string, scopes: readonly string[]): Promise<boolean> {
    try {
      await this.#t.request({ method: "HEAD", url: `/v2/${repo}/blobs/${digest}`, scopes, expect: [200] });
      return true;
    } catch (e) {
      if (e instanceof RegistryHttpError && e.status === 404) return false;
      throw e;
    }
  }
}

function uniqueByDigest(blobs: readonly BlobSource[]): BlobSource[] {
  const seen = new Map<string, BlobSource>();
  for (const b of blobs) if (!seen.has(b.digest)) seen.set(b.digest, b);
  return [...seen.values()];
}

/** A registry that sends no Content-Type leaves the manifest's own `mediaType` to say what it is. */
function mediaTypeInside(bytes: Uint8Array): string {
  try {
    const t = (JSON.parse(new TextDecoder().decode(bytes)) as { mediaType?: unknown }).mediaType;
    return typeof t === "string" ? t : "";
  } catch {
    return "";
  }
}
