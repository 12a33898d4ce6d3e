/**
 * The bucket as the collector sees it: the few R2 operations it uses, each one counted, so that an
 * invocation can stop before the platform's per-invocation subrequest limit and resume later.
 */
import type { Bucket } from "../storage/bucket.ts";

/** R2 deletes at most this many keys per call. */
const DELETE_BATCH = 1000;

export type ListInclude = ("httpMetadata" | "customMetadata")[];

export class GcBucket implements Bucket {
  readonly raw: Bucket;
  readonly limit: number;
  operations = 0;

  constructor(raw: Bucket, limit: number) {
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

  async get(key: string, options?: R2GetOptions): Promise<R2ObjectBody | null> {
    this.operations++;
    return this.raw.get(key, options);
  }

  async put(
    key: string,
    value: ReadableStream | ArrayBuffer | ArrayBufferView | string | null,
    options?: R2PutOptions,
  ): Promise<R2Object | null> {
    this.operations++;
    return this.raw.put(key, value, options);
  }

  async delete(keys: string | readonly string[]): Promise<void> {
    const list = typeof keys === "string" ? [keys] : keys;
    for (let i = 0; i < list.length; i += DELETE_BATCH) {
      this.operations++;
      await this.raw.delete(list.slice(i, i + DELETE_BATCH));
    }
  }
}
