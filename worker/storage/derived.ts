/**
 * Derived objects: partition manifests, indexes and configs that the registry computes on
 * request. They live apart from pushed content, are content-addressed, are never tags, and may be
 * collected at any time, since they can be computed again from what was pushed.
 */
import type { Digest } from "../../core/oci/digest.ts";
import type { Content } from "../../core/tdfs/partition.ts";
import type { BlobInfo } from "./blobs.ts";
import { keys } from "./keys.ts";
import type { StoredManifest } from "./manifests.ts";

/** How stale a derived object's lastAccess may get before a read refreshes it (one write a day at most). */
const TOUCH_INTERVAL_MS = 24 * 3600 * 1000;

export class DerivedStore {
  private readonly bucket: R2Bucket;
  constructor(bucket: R2Bucket) {
    this.bucket = bucket;
  }

  async putManifest(name: string, content: Content, mediaType: string): Promise<void> {
    await this.bucket.put(keys.derivedManifest(name, content.digest), content.bytes, {
      httpMetadata: { contentType: mediaType },
      customMetadata: { lastAccess: String(Date.now()) },
    });
  }

  async getManifest(name: string, digest: Digest): Promise<StoredManifest | null> {
    const obj = await this.bucket.get(keys.derivedManifest(name, digest));
    if (!obj) return null;
    return { digest, mediaType: obj.httpMetadata?.contentType ?? "", bytes: new Uint8Array(await obj.arrayBuffer()) };
  }

  /**
   * Whether a derived manifest still exists; refreshes its lastAccess when it is older than a day,
   * so the collector keeps partitions that are in use without a write on every pull.
   */
  async touchManifest(name: string, digest: Digest): Promise<boolean> {
    const key = keys.derivedManifest(name, digest);
    const head = await this.bucket.head(key);
    if (!head) return false;
    if (Date.now() - Number(head.customMetadata?.lastAccess ?? 0) > TOUCH_INTERVAL_MS) {
      const obj = await this.bucket.get(key);
      if (obj) {
        await this.bucket.put(key, await obj.arrayBuffer(), {
          httpMetadata: obj.httpMetadata ?? {},
          customMetadata: { lastAccess: String(Date.now()) },
        });
      }
    }
    return true;
  }

  async putBlob(name: string, content: Content): Promise<void> {
    await this.bucket.put(keys.derivedBlob(name, content.digest), content.bytes, {
      httpMetadata: { contentType: "application/octet-stream" },
      customMetadata: { lastAccess: String(Date.now()) },
    });
  }

  async statBlob(name: string, digest: Digest): Promise<BlobInfo | null> {
    const key = keys.derivedBlob(name, digest);
    const head = await this.bucket.head(key);
    return head ? { digest, size: head.size, compression: "none", location: key } : null;
  }
}
