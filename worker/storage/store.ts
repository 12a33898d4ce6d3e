/** The storage facade handed to routes: every read and write of registry state goes through it. */
import type { Bindings } from "../env.ts";
import { BlobStore } from "./blobs.ts";
import { Catalog } from "./catalog.ts";
import { DerivedStore } from "./derived.ts";
import { ManifestStore } from "./manifests.ts";
import { UploadStore } from "./uploads.ts";

export interface Store {
  blobs: BlobStore;
  uploads: UploadStore;
  manifests: ManifestStore;
  catalog: Catalog;
  derived: DerivedStore;
  bucket: R2Bucket;
  cache: KVNamespace;
}

const DEFAULT_UPLOAD_TTL_SECONDS = 24 * 3600;

export function createStore(env: Bindings): Store {
  const blobs = new BlobStore(env.BLOBS);
  const ttl = Number(env.UPLOAD_TTL_SECONDS ?? DEFAULT_UPLOAD_TTL_SECONDS);
  return {
    blobs,
    uploads: new UploadStore(env.BLOBS, blobs, Number.isFinite(ttl) && ttl > 0 ? ttl : DEFAULT_UPLOAD_TTL_SECONDS),
    manifests: new ManifestStore(env.BLOBS),
    catalog: new Catalog(env.BLOBS),
    derived: new DerivedStore(env.BLOBS),
    bucket: env.BLOBS,
    cache: env.CACHE,
  };
}
