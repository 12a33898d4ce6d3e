/**
 * A mirrored repository: `lab/team/model` read from `team/model` on an upstream registry
 * (docs/upstreams.md). Everything fetched is stored like pushed content, content-addressed and
 * verified, and read from the store afterwards: a manifest by digest is fetched once, a blob on its
 * first GET (streamed to the client and into R2 at once), a tag again once UPSTREAM_TAG_TTL_SECONDS
 * have passed. Only what a client asks for is fetched: for a partition, the index, manifests,
 * configs and field, and then the base layers and the selected allotments the device pulls.
 */
import { digestWith, algorithmOf, type Digest } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import { parseManifest } from "../../core/oci/manifest.ts";
import { layerMediaTypeFor, MANIFEST_MEDIA_TYPES, sniffCompression } from "../../core/oci/media-types.ts";
import { splitSemanticTag } from "../../core/tdfs/label.ts";
import type { AllotmentFacts } from "../../core/tdfs/partition.ts";
import { R2_SINGLE_PUT_MAX } from "../storage/blobs.ts";
import type { StoredManifest } from "../storage/manifests.ts";
import type { Store } from "../storage/store.ts";
import { upstreamRequest, UpstreamDown } from "./client.ts";
import type { Upstream } from "./settings.ts";

/** Manifests are small; anything larger is refused rather than held in memory. */
const MANIFEST_MAX_BYTES = 4 * 1024 * 1024;
/** Configs and fields read whole to compute a partition (as the registry reads pushed ones). */
const SMALL_BLOB_MAX_BYTES = 32 * 1024 * 1024;
const ACCEPT = MANIFEST_MEDIA_TYPES.join(", ");

export class Mirror {
  readonly upstream: Upstream;
  readonly name: string;
  readonly remoteName: string;
  private readonly store: Store;
  /** Set when an answer came from the store because the upstream was down: it may be stale. */
  stale = false;

  constructor(store: Store, upstream: Upstream, name: string, remoteName: string) {
    this.store = store;
    this.upstream = upstream;
    this.name = name;
    this.remoteName = remoteName;
  }

  get host(): string {
    return new URL(this.upstream.url).host;
  }

  /**
   * A tag's digest: as stored while fresh, else as the upstream answers a HEAD now (its manifest
   * fetched if it is new). With the upstream down, a tag known before is answered as it was.
   */
  async tag(tag: string): Promise<Digest | null> {
    // On a mirror, `v1--jetson` is always a partition of `v1`: asking the upstream for a literal tag
    // of that name on every pull would cost a round trip, and fail whenever the upstream is down.
    if (splitSemanticTag(tag)) return null;
    const { manifests, config } = this.store;
    const known = await manifests.mirrorTag(this.name, tag);
    const now = Date.now();
    if (known && now - known.fetched < config.upstreamTagTtlSeconds * 1000) return known.digest;
    let res: Response;
    try {
      res = await upstreamRequest(this.upstream, this.remoteName, "HEAD", `manifests/${encodeURIComponent(tag)}`, {
        Accept: ACCEPT,
      });
    } catch (e) {
      if (e instanceof UpstreamDown && known) {
        this.stale = true;
        console.warn(`${this.name}:${tag} answered from the store, as last seen: ${e.message}`);
        return known.digest;
      }
      throw unavailable(e);
    }
    if (res.status === 404) return null;
    if (res.status !== 200) throw new RegistryError("UNAVAILABLE", `upstream ${this.host} answered HTTP ${res.status}`);
    let digest = res.headers.get("docker-content-digest") as Digest | null;
    if (!digest || !(await manifests.exists(this.name, digest))) {
      // New to this registry (or the upstream names no digest in a HEAD): fetch it by tag or digest.
      digest = (await this.fetchManifest(digest ?? tag)).digest;
    }
    await manifests.pointMirrorTag(this.name, tag, digest, now);
    await this.store.catalog.touch(this.name);
    return digest;
  }

  /** A manifest by digest: from the store, else fetched once and kept. */
  async manifest(digest: Digest): Promise<StoredManifest | null> {
    return (
      (await this.store.manifests.get(this.name, digest)) ??
      this.fetchManifest(digest).catch((e) => {
        if (e instanceof RegistryError && e.code === "MANIFEST_UNKNOWN") return null;
        throw e;
      })
    );
  }

  /** A config or a field, whole: from the store, else fetched (and stored) once. */
  async smallBlob(digest: Digest): Promise<Uint8Array> {
    const blobs = this.store.blobs;
    let info = await blobs.stat(this.name, digest);
    if (!info) {
      const res = await this.blobResponse(digest, {});
      const length = Number(res.headers.get("content-length"));
      if (!Number.isSafeInteger(length) || length > SMALL_BLOB_MAX_BYTES || !res.body) {
        await res.body?.cancel();
        throw new RegistryError("MANIFEST_INVALID", "a config or field of the upstream image is too large", { digest });
      }
      info = await blobs.putStream(this.name, digest, res.body, length);
    }
    return new Uint8Array(await new Response(await blobs.open(info)).arrayBuffer());
  }

  /**
   * The size and media type of an allotment, for a partition: from its link once a device pulled
   * it, else from the first bytes of a ranged GET upstream (its size in Content-Range), never the
   * whole blob.
   */
  async allotmentFacts(digest: Digest): Promise<AllotmentFacts> {
    const info = await this.store.blobs.stat(this.name, digest);
    if (info) return { size: info.size, mediaType: layerMediaTypeFor(info.compression) };
    const res = await this.blobResponse(digest, { Range: "bytes=0-7" });
    const head = new Uint8Array(await res.arrayBuffer()).subarray(0, 8);
    const total = /\/(\d+)$/.exec(res.headers.get("content-range") ?? "")?.[1];
    const size = res.status === 206 && total ? Number(total) : Number(res.headers.get("content-length"));
    if (!Number.isSafeInteger(size))
      throw new RegistryError("UNAVAILABLE", `upstream ${this.host} gave no size for ${digest}`);
    return { size, mediaType: layerMediaTypeFor(sniffCompression(head)) };
  }

  /**
   * A blob the repository does not hold yet. A whole GET is streamed to the client and stored at
   * once; a ranged GET or a HEAD is answered from the upstream as it is, storing nothing.
   */
  async serveBlob(method: "GET" | "HEAD", digest: Digest, range: string | undefined): Promise<Response> {
    const res = await this.blobResponse(digest, range ? { Range: range } : {}, method);
    const headers = new Headers({ "Docker-Content-Digest": digest, "Content-Type": "application/octet-stream" });
    for (const h of ["content-length", "content-range", "accept-ranges", "etag"]) {
      const v = res.headers.get(h);
      if (v) headers.set(h, v);
    }
    const length = Number(res.headers.get("content-length"));
    if (method === "HEAD" || range || !res.body || !Number.isSafeInteger(length) || length > R2_SINGLE_PUT_MAX) {
      // Nothing to store: passed through as it is. A blob past one R2 object is not kept either.
      return new Response(method === "HEAD" ? null : res.body, { status: res.status, headers });
    }
    const body = this.store.blobs.serveAndStore(this.name, digest, res.body, length, this.store.later);
    await this.store.catalog.touch(this.name);
    return new Response(body, { status: 200, headers });
  }

  private async fetchManifest(reference: string): Promise<StoredManifest> {
    let res: Response;
    try {
      res = await upstreamRequest(this.upstream, this.remoteName, "GET", `manifests/${encodeURIComponent(reference)}`, {
        Accept: ACCEPT,
      });
    } catch (e) {
      throw unavailable(e);
    }
    if (res.status === 404) {
      await res.body?.cancel();
      throw new RegistryError("MANIFEST_UNKNOWN", `${this.remoteName}:${reference} is not on upstream ${this.host}`);
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new RegistryError("UNAVAILABLE", `upstream ${this.host} answered HTTP ${res.status}`);
    }
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (bytes.byteLength > MANIFEST_MAX_BYTES)
      throw new RegistryError("MANIFEST_INVALID", "the upstream's manifest is too large");
    const pinned = reference.includes(":") ? (reference as Digest) : undefined;
    const digest = await digestWith(pinned ? algorithmOf(pinned) : "sha256", bytes);
    if (pinned && digest !== pinned) {
      throw new RegistryError("MANIFEST_INVALID", `upstream ${this.host} served other bytes for ${pinned}`, {
        computed: digest,
      });
    }
    const parsed = parseManifest(bytes, res.headers.get("content-type"));
    const m: StoredManifest = { digest, mediaType: parsed.mediaType, bytes };
    await this.store.manifests.put(this.name, m, undefined);
    return m;
  }

  private async blobResponse(
    digest: Digest,
    headers: Record<string, string>,
    method: "GET" | "HEAD" = "GET",
  ): Promise<Response> {
    let res: Response;
    try {
      res = await upstreamRequest(this.upstream, this.remoteName, method, `blobs/${digest}`, headers);
    } catch (e) {
      throw unavailable(e);
    }
    if (res.status === 404) {
      await res.body?.cancel();
      throw new RegistryError("BLOB_UNKNOWN", `not on upstream ${this.host}`, { digest });
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel();
      throw new RegistryError("UNAVAILABLE", `upstream ${this.host} answered HTTP ${res.status}`);
    }
    return res;
  }
}

function unavailable(e: unknown): unknown {
  return e instanceof UpstreamDown ? new RegistryError("UNAVAILABLE", e.message) : e;
}
