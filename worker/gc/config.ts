/** The collector's settings, read from wrangler vars. Every one has a safe default. */
import type { Bindings } from "../env.ts";
import { DEFAULT_UPLOAD_TTL_SECONDS } from "../storage/store.ts";

/** The GC's own vars (wrangler.toml `[vars]`); strings, like every var. */
export interface GcVars {
  /** Objects written less than this long before a collection started are never deleted. */
  GC_GRACE_SECONDS?: string;
  /** Derived (partition) objects neither written nor read for this long are deleted. */
  GC_DERIVED_TTL_SECONDS?: string;
  /** R2 operations one invocation may spend before it saves its cursor and stops. */
  GC_MAX_OPERATIONS?: string;
}

export interface GcConfig {
  graceMs: number;
  uploadTtlMs: number;
  derivedTtlMs: number;
  maxOperations: number;
}

export const GC_DEFAULTS = {
  graceSeconds: 3600,
  uploadTtlSeconds: DEFAULT_UPLOAD_TTL_SECONDS,
  /** Well above the daily refresh of a derived object's lastAccess, so a partition in use is never collected. */
  derivedTtlSeconds: 7 * 24 * 3600,
  /** Under the 1,000 subrequests of a Workers Standard invocation, with room for the rest of the request. */
  maxOperations: 900,
} as const;

export function gcConfig(env: Pick<Bindings, "UPLOAD_TTL_SECONDS"> & GcVars): GcConfig {
  return {
    graceMs: seconds(env.GC_GRACE_SECONDS, GC_DEFAULTS.graceSeconds, 0) * 1000,
    uploadTtlMs: seconds(env.UPLOAD_TTL_SECONDS, GC_DEFAULTS.uploadTtlSeconds, 1) * 1000,
    derivedTtlMs: seconds(env.GC_DERIVED_TTL_SECONDS, GC_DEFAULTS.derivedTtlSeconds, 1) * 1000,
    maxOperations: seconds(env.GC_MAX_OPERATIONS, GC_DEFAULTS.maxOperations, 10),
  };
}

/** A non-negative number from a var, at least `min`; the default when it is absent or malformed. */
function seconds(raw: string | undefined, fallback: number, min: number): number {
  const n = Number(raw ?? fallback);
  return Number.isFinite(n) && n >= min ? n : fallback;
}
