/**
 * The one place where a failed storage call becomes an error of its own kind. R2 fails now and
 * then ("We encountered an internal error", a lost connection, a 503 under load); such a call is
 * rethrown as a StorageError, which the app answers 503 UNAVAILABLE (worker/app.ts), the answer a
 * client retries, instead of a 500 or a 400 that blames the request. Every Store (createStore)
 * and every collection (gc/collector.ts) sees the bucket through `guardBucket`, so no path can
 * forget it. It stays an Error, not a RegistryError, so the code that tells a client's fault (a
 * body cut short, a digest R2 refused) from the service's reads it as the service's.
 */
import { RegistryError } from "../../core/oci/errors.ts";
import type { Bucket } from "./bucket.ts";

/** A storage call that failed: the service is unavailable, not the request wrong. */
export class StorageError extends Error {
  constructor(operation: string, cause: unknown) {
    super(`${operation} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = "StorageError";
  }
}

/** `e` as a StorageError: itself if it is one already. */
export function asStorageError(operation: string, e: unknown): StorageError {
  return e instanceof StorageError ? e : new StorageError(operation, e);
}

/**
 * What a failure while reading a stored object's body is (blocks.ts BlockSource): the service's,
 * not a client's body cut short; a RegistryError (a piece found missing) stays what it says.
 */
export function fromStorage(e: unknown): Error {
  return e instanceof RegistryError ? e : asStorageError("R2 body", e);
}

async function guarded<T>(operation: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw asStorageError(operation, e);
  }
}

/** The bucket with every failed call rethrown as a StorageError. */
export function guardBucket(bucket: Bucket): Bucket {
  return {
    head: (key) => guarded("R2 head", () => bucket.head(key)),
    get: (key, options) => guarded("R2 get", () => bucket.get(key, options)),
    put: (key, value, options) => guarded("R2 put", () => bucket.put(key, value, options)),
    delete: (keys) => guarded("R2 delete", () => bucket.delete(keys)),
    list: (options) => guarded("R2 list", () => bucket.list(options)),
  };
}
