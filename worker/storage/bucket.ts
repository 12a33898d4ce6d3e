/**
 * The object store under the registry: the part of R2's API the storage layer uses. R2 itself
 * satisfies it, and so does MemoryBucket (memory-bucket.ts), on which the interleaving harness runs
 * the same code. Multipart uploads are not part of it: uploads are stored as pieces (uploads.ts).
 */
export interface Bucket {
  head(key: string): Promise<R2Object | null>;
  get(key: string, options?: R2GetOptions): Promise<R2ObjectBody | null>;
  /** With `onlyIf`, answers null when the condition does not hold, and writes nothing. */
  put(
    key: string,
    value: ReadableStream | ArrayBuffer | ArrayBufferView | string | null,
    options?: R2PutOptions,
  ): Promise<R2Object | null>;
  delete(keys: string | string[]): Promise<void>;
  list(options?: R2ListOptions): Promise<R2Objects>;
}

/** A put that succeeds only where no object exists yet under the key. */
export const IF_ABSENT: R2Conditional = { etagDoesNotMatch: "*" };

/** A put that succeeds only where the object is still the one read with `etag`. */
export const ifUnchanged = (etag: string): R2Conditional => ({ etagMatches: etag });

/** Deletes in batches of R2's 1,000 keys a call. */
export async function deleteAll(bucket: Bucket, keys: readonly string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) await bucket.delete(keys.slice(i, i + 1000));
}

/** Every object under `prefix`, page by page. */
export async function* listAll(
  bucket: Bucket,
  prefix: string,
  include: R2ListOptions["include"] = [],
): AsyncGenerator<R2Object> {
  let cursor: string | undefined;
  do {
    const page = await bucket.list({
      prefix,
      ...(cursor ? { cursor } : {}),
      ...(include.length ? { include } : {}),
    });
    yield* page.objects;
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
}
