/**
 * The bucket as the collector sees it: the few R2 operations it uses, each one counted, so that an
 * invocation can stop before the platform's per-invocation subrequest limit and resume later.
 */

/** R2 deletes at most this many keys per call. */
const DELETE_BATCH = 1000;

export type ListInclude = ("httpMetadata" | "customMetadata")[];

export class GcBucket {
  readonly raw: R2Bucket;
  readonly limit: number;
  operations = 0;

  constructor(raw: R2Bucket, limit: number) {
    this.raw = raw;
    this.limit = limit;
  }

  /** Whether this invocation has spent its operations; checked between units of work, never inside one. */
  get exhausted(): boolean {
    return this.operations >= this.limit;
  }

  async list(options: R2ListOptions): Promise<R2Objects> {
    this.operations++;
    return this.raw.list(options);
  }

  /** Every object under `prefix`, page by page. */
  async *listAll(prefix: string, include: ListInclude = []): AsyncGenerator<R2Object> {
    let cursor: string | undefined;
    do {
      const page = await this.list({ prefix, ...(cursor ? { cursor } : {}), ...(include.length ? { include } : {}) });
      yield* page.objects;
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
  }

  async head(key: string): Promise<R2Object | null> {
    this.operations++;
    return this.raw.head(key);
  }

  async get(key: string): Promise<R2ObjectBody | null> {
    this.operations++;
    return this.raw.get(key);
  }

  async put(key: string, value: ArrayBuffer | Uint8Array | string | null, options?: R2PutOptions): Promise<void> {
    this.operations++;
    await this.raw.put(key, value, options);
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      this.operations++;
      await this.raw.delete(keys.slice(i, i + DELETE_BATCH));
    }
  }

  /** Aborts an R2 multipart upload; one that already completed or was aborted is left as it is. */
  async abortMultipart(key: string, uploadId: string): Promise<void> {
    this.operations++;
    try {
      await this.raw.resumeMultipartUpload(key, uploadId).abort();
    } catch {
      // Nothing left to free.
    }
  }
}
