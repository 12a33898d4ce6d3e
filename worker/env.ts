/** The Worker's typed environment: bindings from wrangler.toml and per-request variables. */
import type { Store } from "./storage/store.ts";

export interface Bindings {
  /** R2: blobs, manifests, tags, upload sessions. The source of truth (strongly consistent). */
  BLOBS: R2Bucket;
  /** KV: caches of immutable, content-addressed results only (eventually consistent). */
  CACHE: KVNamespace;
  /** Largest PATCH body clients should send; advertised as OCI-Chunk-Max-Length. */
  CHUNK_MAX_BYTES?: string;
  /** Blobs up to this size are put into the Workers Cache API on GET. */
  CACHE_MAX_BLOB_BYTES?: string;
  /** How long an idle upload session lives, in seconds. */
  UPLOAD_TTL_SECONDS?: string;
}

export interface Variables {
  store: Store;
}

export type AppEnv = { Bindings: Bindings; Variables: Variables };
