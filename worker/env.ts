/** The Worker's typed environment: bindings from wrangler.toml and per-request variables. */
import type { AuthState } from "./auth/middleware.ts";
import type { GcVars } from "./gc/config.ts";
import type { Store } from "./storage/store.ts";

/** Bindings and vars (wrangler.toml); the collector's own vars are declared with it (GcVars). */
export interface Bindings extends GcVars {
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
  /** "token" (the default: closed) or "none" (open, only when asked for): see docs/auth.md. */
  AUTH_MODE?: string;
  /** Users, password hashes and access rules (JSON); a secret in production. */
  AUTH_CONFIG?: string;
  /** The HMAC-SHA256 key that signs tokens; a wrangler secret. */
  TOKEN_SIGNING_KEY?: string;
  /** Rate Limiting binding ([[ratelimits]]): password checks per user name (worker/auth/login-limit.ts). */
  LOGIN_LIMITER?: RateLimit;
}

export interface Variables {
  store: Store;
  /** Who is asking and what they may do; set by worker/auth/middleware.ts before any route. */
  auth: AuthState;
}

export type AppEnv = { Bindings: Bindings; Variables: Variables };
