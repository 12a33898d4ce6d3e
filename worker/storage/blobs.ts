/**
 * Blob storage: bytes stored once per digest under `blobs/`, linked into repositories. A link
 * carries what a reader needs (size, compression, where the bytes are), so serving a blob costs
 * one HEAD of the link and one ranged GET of the bytes.
 */
import type { Digest } from "../../core/oci/digest.ts";
import { hexOf, toHex } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import { sniffCompression, type Compression } from "../../core/oci/media-types.ts";
import { keys } from "./keys.ts";
import { bodyEndedEarly, digestOf, peek } from "./streams.ts";

export interface BlobInfo {
  digest: Digest;
  size: number;
  compression: Compression;
  /** The R2 key holding the bytes: the blob key itself, or a `data/` object from a chunked upload. */
  location: string;
}

export interface ByteRange {
  offset: number;
  length: number;
}

/** R2's limit for a single-part object; larger blobs arrive through multipart (chunked) uploads. */
export const R2_SINGLE_PUT_MAX = 5 * 1024 ** 3 - 5 * 1024 ** 2;

function toMeta(info: BlobInfo): Record<string, string> {
  return { size: String(info.size), comp: info.compression, loc: info.location };
}

/** A BlobInfo from the customMetadata of a link or blob object. */
export function blobInfoFromMeta(
  digest: Digest,
  key: string,
  meta: Record<string, string> | undefined,
  size: number,
): BlobInfo {
  return {
    digest,
    size: meta?.size !== undefined ? Number(meta.size) : size,
    compression: (meta?.comp as Compression | undefined) ?? "none",
    location: meta?.loc ?? key,
  };
}

export class BlobStore {
  private readonly bucket: R2Bucket;
  constructor(bucket: R2Bucket) {
    this.bucket = bucket;
  }

  /** The blob as linked into `repo`, or null when the repository does not have it. */
  async stat(repo: string, digest: Digest): Promise<BlobInfo | null> {
    const link = await this.bucket.head(keys.blobLink(repo, digest));
    return link ? blobInfoFromMeta(digest, keys.blob(digest), link.customMetadata, link.size) : null;
  }

  /** The blob as stored globally, whichever repositories link it. */
  async statGlobal(digest: Digest): Promise<BlobInfo | null> {
    const obj = await this.bucket.head(keys.blob(digest));
    return obj ? blobInfoFromMeta(digest, keys.blob(digest), obj.customMetadata, obj.size) : null;
  }

  async open(info: BlobInfo, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    const obj = await this.bucket.get(info.location, range ? { range } : undefined);
    if (!obj) throw new RegistryError("BLOB_UNKNOWN", "blob data is missing", { digest: info.digest });
    return obj.body;
  }

  /** Links a stored blob into a repository (a push, or a cross-repository mount: never a copy). */
  async link(repo: string, info: BlobInfo): Promise<void> {
    await this.bucket.put(keys.blobLink(repo, info.digest), null, { customMetadata: toMeta(info) });
  }

  async unlink(repo: string, digest: Digest): Promise<boolean> {
    const key = keys.blobLink(repo, digest);
    if (!(await this.bucket.head(key))) return false;
    await this.bucket.delete(key);
    return true;
  }

  /**
   * Stores a body of known length under its digest, hashing it natively while it streams. R2 is
   * also given the expected sha256, so a body that does not match is never written at all.
   */
  async putStream(digest: Digest, body: ReadableStream<Uint8Array>, length: number): Promise<BlobInfo> {
    const existing = await this.statGlobal(digest);
    if (existing) {
      // Content-addressed: the stored bytes are already right, but the client's must still match.
      await verify(digest, body, length);
      return existing;
    }
    const info = (compression: Compression): BlobInfo => ({
      digest,
      size: length,
      compression,
      location: keys.blob(digest),
    });
    const stored = await putHashed(this.bucket, keys.blob(digest), body, length, {
      sha256: hexOf(digest),
      metadata: (compression) => toMeta(info(compression)),
    });
    if (stored.digest !== digest) {
      throw new RegistryError("DIGEST_INVALID", undefined, { expected: digest, computed: stored.digest });
    }
    return info(stored.compression);
  }

  /** Stores a small in-memory blob (the tail of a short chunked upload). */
  async putBytes(digest: Digest, bytes: Uint8Array): Promise<BlobInfo> {
    const existing = await this.statGlobal(digest);
    if (existing) return existing;
    const info: BlobInfo = {
      digest,
      size: bytes.byteLength,
      compression: sniffCompression(bytes.subarray(0, 4)),
      location: keys.blob(digest),
    };
    await this.bucket.put(keys.blob(digest), bytes, {
      sha256: hexOf(digest),
      customMetadata: toMeta(info),
      httpMetadata: { contentType: "application/octet-stream" },
    });
    return info;
  }

  /**
   * Records a blob whose bytes were assembled elsewhere (a completed multipart object). R2 cannot
   * rename, so the blob key becomes a 0-byte pointer to the data; no byte is copied.
   */
  async adopt(digest: Digest, location: string, size: number, compression: Compression): Promise<BlobInfo> {
    const existing = await this.statGlobal(digest);
    if (existing) {
      await this.bucket.delete(location);
      return existing;
    }
    const info: BlobInfo = { digest, size, compression, location };
    await this.bucket.put(keys.blob(digest), null, { customMetadata: toMeta(info) });
    return info;
  }
}

/**
 * Streams a body of known length into one R2 object while hashing it natively (DigestStream),
 * and learns its compression from its first bytes on the way. With `sha256`, R2 itself refuses a
 * body that does not match, so it is never written; without it the caller decides what to keep.
 */
export async function putHashed(
  bucket: R2Bucket,
  key: string,
  body: ReadableStream<Uint8Array>,
  length: number,
  opts: { sha256?: string; metadata?: (compression: Compression) => Record<string, string> } = {},
): Promise<{ digest: Digest; compression: Compression; head: Uint8Array }> {
  const { head, stream } = await peek(body, 8);
  const compression = sniffCompression(head);
  // Hashed in line rather than through tee(): a tee lets the request run ahead of a slower R2
  // write and buffers the difference, which for a multi-GB blob would exhaust the isolate. In
  // line, the body is read no faster than R2 takes it.
  const hasher = new crypto.DigestStream("SHA-256");
  const writer = hasher.getWriter();
  let size = 0;
  let readError: unknown;
  const hashing = new TransformStream<Uint8Array, Uint8Array>({
    async transform(chunk, ctl) {
      size += chunk.byteLength;
      ctl.enqueue(chunk);
      await writer.write(chunk);
    },
    async flush() {
      await writer.close();
    },
  });
  const guarded = guardReads(stream, (e) => (readError = e));
  let putError: unknown;
  try {
    await bucket.put(key, guarded.pipeThrough(hashing).pipeThrough(new FixedLengthStream(length)), {
      ...(opts.sha256 ? { sha256: opts.sha256 } : {}),
      customMetadata: opts.metadata?.(compression) ?? {},
      httpMetadata: { contentType: "application/octet-stream" },
    });
  } catch (e) {
    putError = e;
  }
  if (readError !== undefined) throw bodyEndedEarly(readError);
  if (size !== length) {
    throw new RegistryError("SIZE_INVALID", "body length does not match Content-Length", {
      expected: length,
      received: size,
    });
  }
  const digest: Digest = `sha256:${toHex(await hasher.digest)}`;
  // R2 refusing a body that does not match `sha256` is a digest mismatch, which the caller reports.
  if (putError && !(opts.sha256 && digest !== `sha256:${opts.sha256}`)) throw putError;
  return { digest, compression, head };
}

/** The stream, with a read failure (a client hanging up) recorded before it propagates. */
function guardReads(stream: ReadableStream<Uint8Array>, onError: (e: unknown) => void): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      try {
        const r = await reader.read();
        if (r.done) ctl.close();
        else ctl.enqueue(r.value);
      } catch (e) {
        onError(e);
        ctl.error(e);
      }
    },
    cancel: (reason) => reader.cancel(reason),
  });
}

/** Hashes a body natively and checks it against the digest and length the client declared. */
async function verify(digest: Digest, body: ReadableStream<Uint8Array>, length: number): Promise<void> {
  let hashed: { digest: Digest; size: number };
  try {
    hashed = await digestOf(body);
  } catch (e) {
    throw bodyEndedEarly(e);
  }
  if (hashed.size !== length) {
    throw new RegistryError("SIZE_INVALID", "body length does not match Content-Length", {
      expected: length,
      received: hashed.size,
    });
  }
  if (hashed.digest !== digest) {
    throw new RegistryError("DIGEST_INVALID", undefined, { expected: digest, computed: hashed.digest });
  }
}
