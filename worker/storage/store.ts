/** The storage facade handed to routes: every read and write of registry state goes through it. */
import type { Bindings } from "../env.ts";
import { BlobStore } from "./blobs.ts";
import { Catalog } from "./catalog.ts";
import { DerivedStore } from "./derived.ts";
import { EdgeCache } from "./edge-cache.ts";
import { ManifestStore } from "./manifests.ts";
import { UploadStore } from "./uploads.ts";

export interface Store {
  blobs: BlobStore;
  uploads: UploadStore;
  manifests: ManifestStore;
  catalog: Catalog;
  derived: DerivedStore;
  edgeCache: EdgeCache;
  bucket: R2Bucket;
  cache: KVNamespace;
}

export const DEFAULT_UPLOAD_TTL_SECONDS = 24 * 3600;
const DEFAULT_CACHE_MAX_BLOB_BYTES = 512 * 1024 * 1024;

function positive(raw: string | undefined, fallback: number): number {
  const n = Number(raw ?? fallback);
  return Number.isFinite(n) && n > 0 ? n : fallback;
}

export function createStore(env: Bindings): Store {
  const blobs = new BlobStore(env.BLOBS);
  return {
    blobs,
    uploads: new UploadStore(env.BLOBS, blobs, positive(env.UPLOAD_TTL_SECONDS, DEFAULT_UPLOAD_TTL_SECONDS)),
    manifests: new ManifestStore(env.BLOBS),
    catalog: new Catalog(env.BLOBS),
    derived: new DerivedStore(env.BLOBS),
    edgeCache: new EdgeCache(positive(env.CACHE_MAX_BLOB_BYTES, DEFAULT_CACHE_MAX_BLOB_BYTES)),
    bucket: env.BLOBS,
    cache: env.CACHE,
  };
}
