/**
 * A request body copied into R2 in large blocks. A request body arrives in chunks of a few KB,
 * and every chunk that crosses a JavaScript stream stage costs promises and garbage: a 1 GB push
 * spent about 23 ms of workerd CPU per MB that way (two thirds of it in V8's allocator and
 * collector), which made pushes CPU-bound at ~40 MB/s. Reading with a BYOB reader's
 * `readAtLeast` into 1 MiB blocks touches JavaScript once per block, and hashing a block and
 * writing it to R2 stay native.
 */
import { bodyEndedEarly } from "./streams.ts";
import type { Bucket } from "./bucket.ts";

/** JavaScript runs once per block of this size; two blocks are in flight per copy. */
export const BLOCK_BYTES = 1024 * 1024;

/** Blocks of a body, read with a BYOB reader where the stream allows it (request and R2 bodies do). */
export class BlockSource {
  private readonly byob: ReadableStreamBYOBReader | undefined;
  private readonly plain: ReadableStreamDefaultReader<Uint8Array> | undefined;
  private pending: Uint8Array | undefined;

  constructor(body: ReadableStream<Uint8Array>) {
    let byob: ReadableStreamBYOBReader | undefined;
    try {
      byob = body.getReader({ mode: "byob" });
    } catch {
      // A stream built in JavaScript without `type: "bytes"` (tests, transforms): chunk by chunk.
    }
    this.byob = byob;
    this.plain = byob ? undefined : (body.getReader() as ReadableStreamDefaultReader<Uint8Array>);
  }

  /** Up to `max` bytes (exactly `max` unless the body ends first), or undefined at its end. */
  async read(max: number): Promise<Uint8Array | undefined> {
    try {
      if (this.byob) {
        const r = await this.byob.readAtLeast(max, new Uint8Array(max));
        return r.value && r.value.byteLength > 0 ? r.value : undefined;
      }
      if (this.pending) {
        const p = this.pending;
        this.pending = undefined;
        return this.split(p, max);
      }
      for (;;) {
        const r = await this.plain!.read();
        if (r.done) return undefined;
        if (r.value.byteLength > 0) return this.split(r.value, max);
      }
    } catch (e) {
      throw bodyEndedEarly(e);
    }
  }

  /** How many bytes are left (0 for a body of exactly the length read so far); drops them. */
  async rest(): Promise<number> {
    const extra = await this.read(1);
    if (extra) await (this.byob ?? this.plain)!.cancel().catch(() => undefined);
    return extra?.byteLength ?? 0;
  }

  /** Stops reading: the body is not wanted any more. */
  async cancel(reason?: unknown): Promise<void> {
    await (this.byob ?? this.plain)!.cancel(reason).catch(() => undefined);
  }

  private split(chunk: Uint8Array, max: number): Uint8Array {
    if (chunk.byteLength <= max) return chunk;
    this.pending = chunk.subarray(max);
    return chunk.subarray(0, max);
  }
}

/**
 * Writes the next `length` bytes of `source` into the object `key`, each block passed to `onBlock`
 * (to hash it) before it is written. Answers how many bytes the source had: fewer than `length`
 * when it ended early, in which case nothing is stored.
 */
export async function putBlocks(
  bucket: Bucket,
  key: string,
  source: BlockSource,
  length: number,
  onBlock: (block: Uint8Array) => Promise<void>,
  options: R2PutOptions,
): Promise<number> {
  const fixed = new FixedLengthStream(length);
  const writer = fixed.writable.getWriter();
  const put = bucket.put(key, fixed.readable, options);
  // Surfaced by the awaits below; never an unhandled rejection when the copy stops first.
  put.catch(() => undefined);
  let copied = 0;
  const inFlight: Promise<void>[] = [];
  try {
    while (copied < length) {
      const block = await source.read(Math.min(BLOCK_BYTES, length - copied));
      if (!block) break;
      copied += block.byteLength;
      await onBlock(block);
      const written = writer.write(block);
      // Awaited below; when the copy stops first, the abort rejects it, and that is no failure.
      written.catch(() => undefined);
      inFlight.push(written);
      if (inFlight.length >= 2) await inFlight.shift();
    }
    if (copied < length) {
      await writer.abort(new Error("body ended early")).catch(() => undefined);
      await put.catch(() => undefined);
      return copied;
    }
    await Promise.all(inFlight);
    await writer.close();
    await put;
    return copied;
  } catch (e) {
    await writer.abort(e).catch(() => undefined);
    throw e;
  }
}

/** The first 8 bytes of a body (enough to tell its compression), given those so far and the next block. */
export function headOf(head: Uint8Array, block: Uint8Array): Uint8Array {
  if (head.byteLength >= 8) return head;
  const out = new Uint8Array(Math.min(8, head.byteLength + block.byteLength));
  out.set(head);
  out.set(block.subarray(0, out.byteLength - head.byteLength), head.byteLength);
  return out;
}
