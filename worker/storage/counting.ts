/**
 * Every R2 and KV call a request makes, counted: what `DEBUG_TIMING=1` puts in `Server-Timing`,
 * and what the edge benchmark reads to show that a warm pull makes none (docs/edge.md). The same
 * wrapper marks a storage call that throws (R2's "We encountered an internal error", a lost
 * connection) as a StorageError, which the app answers 503 UNAVAILABLE, the answer a client
 * retries, instead of a 500. It stays an Error of its own kind, not a RegistryError, so the code
 * that tells a refused checksum from a client's error (blobs.ts putHashed) reads it as before.
 */
import type { Bucket } from "./bucket.ts";

/** A storage call that failed: the service is unavailable, not the request wrong. */
export class StorageError extends Error {
  constructor(operation: string, cause: unknown) {
    super(`${operation} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "StorageError";
  }
}

export interface OpCounts {
  r2: number;
  kv: number;
}

export function newCounts(): OpCounts {
  return { r2: 0, kv: 0 };
}

/** `r2;count=N, kv;count=M`, a Server-Timing value. */
export function serverTiming(c: OpCounts): string {
  return `r2;count=${c.r2}, kv;count=${c.kv}`;
}

async function counted<T>(counts: OpCounts, kind: keyof OpCounts, what: string, call: () => Promise<T>): Promise<T> {
  counts[kind]++;
  try {
    return await call();
  } catch (e) {
    throw e instanceof StorageError ? e : new StorageError(what, e);
  }
}

export function countingBucket(bucket: Bucket, counts: OpCounts): Bucket {
  return {
    head: (key) => counted(counts, "r2", "R2 head", () => bucket.head(key)),
    get: (key, options) => counted(counts, "r2", "R2 get", () => bucket.get(key, options)),
    put: (key, value, options) => counted(counts, "r2", "R2 put", () => bucket.put(key, value, options)),
    delete: (keys) => counted(counts, "r2", "R2 delete", () => bucket.delete(keys)),
    list: (options) => counted(counts, "r2", "R2 list", () => bucket.list(options)),
  };
}

/** The part of KV the registry uses (partition-cache.ts), counted. */
export function countingKv(kv: KVNamespace, counts: OpCounts): KVNamespace {
  const wrapped = {
    get: (key: string, type?: unknown) =>
      counted(counts, "kv", "KV get", () => (kv.get as (k: string, t?: unknown) => Promise<unknown>)(key, type)),
    put: (key: string, value: string, options?: KVNamespacePutOptions) =>
      counted(counts, "kv", "KV put", () => kv.put(key, value, options)),
    delete: (key: string) => counted(counts, "kv", "KV delete", () => kv.delete(key)),
    list: (options?: KVNamespaceListOptions) => counted(counts, "kv", "KV list", () => kv.list(options)),
  };
  return wrapped as unknown as KVNamespace;
}
