/**
 * The registry's settings, read from wrangler vars in one place. Every var is a string; each has
 * a safe default, and a malformed value (a typo in wrangler.toml, `--var X:abc`) falls back to it
 * with a warning in the Worker log rather than reaching a header or a timer as NaN.
 */

import { localPrefixes } from "./upstream/settings.ts";

/** The plain-string vars (wrangler.toml `[vars]`, `--var`, .dev.vars). Secrets and bindings live in env.ts. */
export interface Vars {
  /** Largest PATCH body clients should send; advertised as OCI-Chunk-Max-Length. */
  CHUNK_MAX_BYTES?: string;
  /** Blobs up to this size are put into the Workers Cache API on GET. */
  CACHE_MAX_BLOB_BYTES?: string;
  /** How long an idle upload session lives, in seconds. */
  UPLOAD_TTL_SECONDS?: string;
  /** Objects written less than this long before a collection started are never deleted. */
  GC_GRACE_SECONDS?: string;
  /** Derived (partition) objects neither written nor read for this long are deleted. */
  GC_DERIVED_TTL_SECONDS?: string;
  /** R2 operations one collection invocation may spend before it saves its cursor and stops. */
  GC_MAX_OPERATIONS?: string;
  /**
   * How long a location may keep answering from what it read before (a manifest by digest, a
   * partition, a blob's link) without asking the bucket: the bound on how stale another
   * location's answer may be after a delete (docs/edge.md).
   */
  EDGE_TTL_SECONDS?: string;
  /** How long a location keeps a tag's resolution; 0, the default, asks the bucket every time. */
  TAG_TTL_SECONDS?: string;
  /** "1": every response carries `Server-Timing: r2;count=N, kv;count=M`. */
  DEBUG_TIMING?: string;
  /** Repository prefixes served from other registries (worker/upstream/settings.ts, docs/upstreams.md). */
  UPSTREAMS?: string;
  /** How long a mirrored tag is taken as the upstream said it, before it is asked again. */
  UPSTREAM_TAG_TTL_SECONDS?: string;
  /** Mirrored content unread for this long is collected (and fetched again when asked for). */
  UPSTREAM_CACHE_TTL_SECONDS?: string;
}

export interface GcConfig {
  graceMs: number;
  uploadTtlMs: number;
  derivedTtlMs: number;
  maxOperations: number;
  /** Mirrored tags not asked of their upstream for this long are forgotten (docs/upstreams.md). */
  upstreamCacheTtlMs?: number;
  /** The local prefixes of UPSTREAMS: repositories under them are mirrors. */
  mirrorPrefixes?: string[];
}

export interface Config {
  chunkMaxBytes: number;
  cacheMaxBlobBytes: number;
  uploadTtlSeconds: number;
  gc: GcConfig;
  edgeTtlSeconds: number;
  tagTtlSeconds: number;
  debugTiming: boolean;
  upstreamTagTtlSeconds: number;
}

export const DEFAULTS = {
  /** Under Cloudflare's 100 MB request-body limit on Free and Pro zones, with room for headers. */
  chunkMaxBytes: 95_000_000,
  cacheMaxBlobBytes: 512 * 1024 * 1024,
  uploadTtlSeconds: 24 * 3600,
  gcGraceSeconds: 3600,
  /** Well above the daily refresh of a derived object's lastAccess, so a partition in use is never collected. */
  gcDerivedTtlSeconds: 7 * 24 * 3600,
  /** Under the 1,000 subrequests of a Workers Standard invocation, with room for the rest of the request. */
  gcMaxOperations: 900,
  /** A minute: see docs/edge.md for what it costs and bounds. */
  edgeTtlSeconds: 60,
  tagTtlSeconds: 0,
  /** As long as a location may keep any answer: a pulled tag is asked upstream about once a minute. */
  upstreamTagTtlSeconds: 60,
  upstreamCacheTtlSeconds: 7 * 24 * 3600,
} as const;

export function readConfig(vars: Vars): Config {
  const edgeTtlSeconds = integer(vars, "EDGE_TTL_SECONDS", DEFAULTS.edgeTtlSeconds, 0);
  return {
    chunkMaxBytes: integer(vars, "CHUNK_MAX_BYTES", DEFAULTS.chunkMaxBytes, 1),
    cacheMaxBlobBytes: integer(vars, "CACHE_MAX_BLOB_BYTES", DEFAULTS.cacheMaxBlobBytes, 0),
    uploadTtlSeconds: integer(vars, "UPLOAD_TTL_SECONDS", DEFAULTS.uploadTtlSeconds, 1),
    edgeTtlSeconds,
    // A tag is kept no longer than anything else a location answers from.
    tagTtlSeconds: Math.min(integer(vars, "TAG_TTL_SECONDS", DEFAULTS.tagTtlSeconds, 0), edgeTtlSeconds),
    debugTiming: vars.DEBUG_TIMING === "1",
    upstreamTagTtlSeconds: integer(vars, "UPSTREAM_TAG_TTL_SECONDS", DEFAULTS.upstreamTagTtlSeconds, 0),
    gc: {
      // Never shorter than the window in which a location may still answer from what it read:
      // nothing such an answer points to is collected while it may be served.
      graceMs: Math.max(integer(vars, "GC_GRACE_SECONDS", DEFAULTS.gcGraceSeconds, 0), edgeTtlSeconds) * 1000,
      uploadTtlMs: integer(vars, "UPLOAD_TTL_SECONDS", DEFAULTS.uploadTtlSeconds, 1) * 1000,
      derivedTtlMs: integer(vars, "GC_DERIVED_TTL_SECONDS", DEFAULTS.gcDerivedTtlSeconds, 1) * 1000,
      maxOperations: integer(vars, "GC_MAX_OPERATIONS", DEFAULTS.gcMaxOperations, 10),
      upstreamCacheTtlMs: integer(vars, "UPSTREAM_CACHE_TTL_SECONDS", DEFAULTS.upstreamCacheTtlSeconds, 1) * 1000,
      mirrorPrefixes: localPrefixes(vars.UPSTREAMS) ?? [],
    },
  };
}

const warned = new Set<string>();

/** A whole number of at least `min` from a var; the default, with one warning per isolate, when malformed. */
function integer(vars: Vars, name: keyof Vars, fallback: number, min: number): number {
  const raw = vars[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (/^\s*\d+\s*$/.test(raw) && Number.isSafeInteger(n) && n >= min) return n;
  if (!warned.has(name)) {
    warned.add(name);
    console.warn(
      `config: ${name}=${JSON.stringify(raw.slice(0, 40))} is not a whole number >= ${min}; using ${fallback}`,
    );
  }
  return fallback;
}
