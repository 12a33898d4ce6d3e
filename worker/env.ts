/** The Worker's typed environment: bindings from wrangler.toml and per-request variables. */
import type { AuthBindings } from "./auth/bindings.ts";
import type { AuthState } from "./auth/state.ts";
import type { Vars } from "./config.ts";
import type { SigningBindings } from "./signing/bindings.ts";
import type { Store } from "./storage/store.ts";

/**
 * Bindings, secrets and vars (wrangler.toml). The plain settings are declared and read in config.ts,
 * the auth ones in auth/bindings.ts, the signing ones in signing/bindings.ts: all are leaves, so nothing here imports what imports it.
 */
export interface Bindings extends Vars, AuthBindings, SigningBindings {
  /** R2: blobs, manifests, tags, upload sessions. The source of truth (strongly consistent). */
  BLOBS: R2Bucket;
  /** KV: caches of immutable, content-addressed results only (eventually consistent). */
  CACHE: KVNamespace;
}

export interface Variables {
  store: Store;
  /** Who is asking and what they may do; set by worker/auth/middleware.ts before any route. */
  auth: AuthState;
  /** Work to finish after the response, counted with the request (worker/app.ts). */
  later: (work: Promise<unknown>) => void;
}

export type AppEnv = { Bindings: Bindings; Variables: Variables };
