/** Test bytes: random content, digests of it, and bodies streamed without a known length. */
import { sha256, type Digest } from "../../../core/oci/digest.ts";

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** crypto.getRandomValues fills at most 64 KiB per call. */
const RANDOM_FILL_MAX = 65_536;

export function randomBytes(size: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  for (let at = 0; at < size; at += RANDOM_FILL_MAX) {
    crypto.getRandomValues(out.subarray(at, Math.min(size, at + RANDOM_FILL_MAX)));
  }
  return out;
}

/** The sha256 digest of in-memory bytes, `sha256:<hex>`. */
export function digestOf(bytes: Uint8Array): Promise<Digest> {
  return sha256(bytes);
}

/**
 * The bytes as a stream of `chunkSize` pieces. A request with this body has no Content-Length and
 * goes out with `Transfer-Encoding: chunked`, as Go clients send blobs of unknown length.
 */
export function streamOf(bytes: Uint8Array, chunkSize = 64 * KiB): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(ctl) {
      if (at >= bytes.byteLength) {
        ctl.close();
        return;
      }
      ctl.enqueue(bytes.slice(at, at + chunkSize));
      at += chunkSize;
    },
  });
}

export function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}
