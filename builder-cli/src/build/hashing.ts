/** A pass-through that hashes and counts what flows through it, so no byte is read twice. */
import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import type { Digest } from "../../../core/oci/digest.ts";

export class HashingStream extends Transform {
  readonly hash: Hash = createHash("sha256");
  bytes = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  digest(): Digest {
    return `sha256:${this.hash.digest("hex")}`;
  }
}
