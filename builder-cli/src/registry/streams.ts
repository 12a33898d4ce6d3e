/**
 * Stream plumbing for uploads and downloads. A blob is never held whole: a ChunkReader hands out
 * consecutive request bodies of exact lengths from one source stream, and a download is hashed as
 * it passes through.
 */
import { createHash } from "node:crypto";
import { SourceError } from "./retry.ts";

/** Cuts one source stream into consecutive streams of exact lengths, each counted as it is read. */
export class ChunkReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #what: string;
  #leftover: Uint8Array | undefined;

  constructor(source: ReadableStream<Uint8Array>, what: string) {
    this.#reader = source.getReader();
    this.#what = what;
  }

  /** The next `length` bytes as a stream; `onBytes` sees each piece as the consumer pulls it. */
  take(length: number, onBytes: (n: number) => void): ReadableStream<Uint8Array> {
    let remaining = length;
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (remaining === 0) {
          controller.close();
          return;
        }
        const piece = await this.#next();
        if (!piece) {
          controller.error(new SourceError(`${this.#what} ended ${remaining} bytes early`));
          return;
        }
        const used = piece.subarray(0, Math.min(remaining, piece.length));
        if (used.length < piece.length) this.#leftover = piece.subarray(used.length);
        remaining -= used.length;
        controller.enqueue(used);
        onBytes(used.length);
        if (remaining === 0) controller.close();
      },
    });
  }

  /** Reads and drops `length` bytes (resuming where the source cannot seek). */
  async skip(length: number): Promise<void> {
    const reader = this.take(length, () => {}).getReader();
    while (!(await reader.read()).done);
  }

  /** Fails if the source holds more bytes than were taken: its size was declared wrong. */
  async expectEnd(): Promise<void> {
    const extra = await this.#next();
    if (extra) {
      await this.cancel();
      throw new SourceError(`${this.#what} is longer than its declared size`);
    }
  }

  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }

  async #next(): Promise<Uint8Array | undefined> {
    if (this.#leftover) {
      const l = this.#leftover;
      this.#leftover = undefined;
      return l;
    }
    let r: Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]>>;
    try {
      r = await this.#reader.read();
    } catch (e) {
      throw new SourceError(`reading ${this.#what} failed: ${String((e as Error).message ?? e)}`, e);
    }
    if (r.done) return undefined;
    return r.value.length ? r.value : this.#next();
  }
}

/** Passes a download through, failing at its end if the bytes do not hash to `digest`. */
export function verifyDigest(body: ReadableStream<Uint8Array>, digest: string): ReadableStream<Uint8Array> {
  const hash = createHash("sha256");
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        hash.update(chunk);
        controller.enqueue(chunk);
      },
      flush(controller) {
        const got = `sha256:${hash.digest("hex")}`;
        if (got !== digest) controller.error(new Error(`blob ${digest} arrived with digest ${got}`));
      },
    }),
  );
}
