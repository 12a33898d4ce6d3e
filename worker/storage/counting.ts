/**
 * Every R2 and KV call a request makes, counted: what `DEBUG_TIMING=1` puts in `Server-Timing`,
 * and what the edge benchmark reads to show that a warm pull makes none (docs/edge.md). What a
 * failed call becomes is storage-error.ts's concern.
 */
import type { Bucket } from "./bucket.ts";

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

function counted<T>(counts: OpCounts, kind: keyof OpCounts, call: () => Promise<T>): Promise<T> {
  counts[kind]++;
  return call();
}

export function countingBucket(bucket: Bucket, counts: OpCounts): Bucket {
  return {
    head: (key) => counted(counts, "r2", () => bucket.head(key)),
    get: (key, options) => counted(counts, "r2", () => bucket.get(key, options)),
    put: (key, value, options) => counted(counts, "r2", () => bucket.put(key, value, options)),
    delete: (keys) => counted(counts, "r2", () => bucket.delete(keys)),
    list: (options) => counted(counts, "r2", () => bucket.list(options)),
  };
}

/** The part of KV the registry uses (partition-cache.ts), counted. */
export function countingKv(kv: KVNamespace, counts: OpCounts): KVNamespace {
  const wrapped = {
    get: (key: string, type?: unknown) =>
      counted(counts, "kv", () => (kv.get as (k: string, t?: unknown) => Promise<unknown>)(key, type)),
    put: (key: string, value: string, options?: KVNamespacePutOptions) =>
      counted(counts, "kv", () => kv.put(key, value, options)),
    delete: (key: string) => counted(counts, "kv", () => kv.delete(key)),
    list: (options?: KVNamespaceListOptions) => counted(counts, "kv", () => kv.list(options)),
  };
  return wrapped as unknown as KVNamespace;
}
