/** The Worker's typed environment: bindings from wrangler.toml and per-request variables. */
import type { AuthState } from "./auth/middleware.ts";
import type { Vars } from "./config.ts";
import type { Store } from "./storage/store.ts";

/** Bindings, secrets and vars (wrangler.toml); the plain settings are declared and read in config.ts. */
export interface Bindings extends Vars {
  /** R2: blobs, manifests, tags, upload sessions. The source of truth (strongly consistent). */
  BLOBS: R2Bucket;
  /** KV: caches of immutable, content-addressed results only (eventually consistent). */
  CACHE: KVNamespace;
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
