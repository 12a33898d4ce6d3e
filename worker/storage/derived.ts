/**
 * Derived objects: partition manifests, indexes and configs that the registry computes on
 * request. They live apart from pushed content, are content-addressed, are never tags, and may be
 * collected at any time, since they can be computed again from what was pushed.
 */
import type { Digest } from "../../core/oci/digest.ts";
import type { Content } from "../../core/tdfs/partition.ts";
import type { BlobInfo } from "./blobs.ts";
import type { Bucket } from "./bucket.ts";
import type { Clock } from "./clock.ts";
import { keys } from "./keys.ts";
import type { StoredManifest } from "./manifests.ts";

/**
 * What a derived manifest was computed from: the stored manifest (the image's index, or the
 * platform manifest for a child) and the canonical selection. The collector keeps the signatures
 * of a partition while its source lives, and the registry's signer names both in what it signs.
 */
export interface Provenance {
  source: Digest;
  /** The image the source belongs to: the source itself for the partition's root. */
  image: Digest;
  selection: string;
}

export interface DerivedManifest extends StoredManifest {
  provenance?: Provenance;
}

/** How stale a derived object's lastAccess may get before a read refreshes it (one write a day at most). */
const TOUCH_INTERVAL_MS = 24 * 3600 * 1000;

export class DerivedStore {
  private readonly bucket: Bucket;
  // The Store's clock, as for every other record: the collector judges lastAccess by its own
  // `now`, so both must read the same time (a logical one in the harness).
  private readonly clock: Clock;
  constructor(bucket: Bucket, clock: Clock) {
    this.bucket = bucket;
    this.clock = clock;
  }

  /**
   * Stores a derived manifest. A partition's manifests name their provenance; the registry's own
   * signatures of them name none, so that nothing signs a signature (worker/signing/).
   */
  async putManifest(name: string, content: Content, mediaType: string, provenance?: Provenance): Promise<void> {
    await this.bucket.put(keys.derivedManifest(name, content.digest), content.bytes, {
      httpMetadata: { contentType: mediaType },
      customMetadata: { ...provenance, lastAccess: String(this.clock.now()) },
    });
  }

  async getManifest(name: string, digest: Digest): Promise<DerivedManifest | null> {
    const key = keys.derivedManifest(name, digest);
    const obj = await this.bucket.get(key);
    if (!obj) return null;
    const bytes = new Uint8Array(await obj.arrayBuffer());
    if (this.stale(obj)) await this.rewrite(key, bytes, obj);
    const provenance = provenanceOf(obj);
    return { digest, mediaType: obj.httpMetadata?.contentType ?? "", bytes, ...(provenance ? { provenance } : {}) };
  }

  /** What a derived manifest was computed from, without reading its bytes; null when none is stored. */
  async provenance(name: string, digest: Digest): Promise<Provenance | null> {
    const head = await this.bucket.head(keys.derivedManifest(name, digest));
    return head ? (provenanceOf(head) ?? null) : null;
  }

  /** Whether a derived manifest still exists (refreshing its lastAccess like any read). */
  async touchManifest(name: string, digest: Digest): Promise<boolean> {
    const key = keys.derivedManifest(name, digest);
    const head = await this.bucket.head(key);
    if (head && this.stale(head)) await this.refresh(key);
    return head !== null;
  }

  async putBlob(name: string, content: Content): Promise<void> {
    await this.bucket.put(keys.derivedBlob(name, content.digest), content.bytes, {
      httpMetadata: { contentType: "application/octet-stream" },
      customMetadata: { lastAccess: String(this.clock.now()) },
    });
  }

  async statBlob(name: string, digest: Digest): Promise<BlobInfo | null> {
    const key = keys.derivedBlob(name, digest);
    const head = await this.bucket.head(key);
    if (head && this.stale(head)) await this.refresh(key);
    return head ? { digest, size: head.size, compression: "none", loc: key, pieces: 1 } : null;
  }

  /**
   * Every read of a derived object (the partition's index, its child manifests, its configs)
   * refreshes lastAccess when it is older than a day, so the collector keeps a partition in use
   * whole, with one small write a day at most rather than one per pull. R2 cannot update
   * metadata alone, so the (small) object is written again.
   */
  private async refresh(key: string): Promise<void> {
    const obj = await this.bucket.get(key);
    if (obj) await this.rewrite(key, new Uint8Array(await obj.arrayBuffer()), obj);
  }

  private stale(o: R2Object): boolean {
    return this.clock.now() - Number(o.customMetadata?.lastAccess ?? 0) > TOUCH_INTERVAL_MS;
  }

  /** The same bytes and metadata with a fresh lastAccess (provenance kept). */
  private async rewrite(key: string, bytes: Uint8Array, was: R2Object): Promise<void> {
    await this.bucket.put(key, bytes, {
      httpMetadata: was.httpMetadata ?? {},
      customMetadata: { ...was.customMetadata, lastAccess: String(this.clock.now()) },
    });
  }
}

function provenanceOf(o: R2Object): Provenance | undefined {
  const { source, image, selection } = o.customMetadata ?? {};
  if (!source || selection === undefined) return undefined;
  return { source: source as Digest, image: (image ?? source) as Digest, selection };
}
