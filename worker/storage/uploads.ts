/**
 * Upload sessions, kept in R2 so that every request (wherever it lands) reads them consistently.
 *
 * Two shapes of upload:
 * - A streamed upload (one PATCH with no Content-Range, as skopeo, containerd and docker send a
 *   blob) of known length goes straight into one R2 object, hashed natively on the way: the PUT
 *   that closes it reads nothing back.
 * - Chunks (Content-Range) are cut into R2 multipart parts of exactly `partSize` bytes (R2 wants
 *   every part but the last the same size, at least 5 MiB). Bytes past the last full part are kept
 *   as a small "tail" object until more arrive or the upload closes. The completed multipart
 *   object is the blob (up to 10,000 parts, far beyond R2's 5 GiB single-object limit), and the
 *   close streams it once through the native hash. Should a streamed upload get more chunks, its
 *   object becomes the first parts: a copy of that one request body, never of a whole blob.
 * Either way the blob's bytes stay where the upload put them (R2 has no rename): the blob key
 * becomes a pointer. State is committed only after a chunk is fully stored, so a chunk that fails
 * half-way leaves the session as it was.
 */
import type { Digest } from "../../core/oci/digest.ts";
import { sha256, toHex } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import { sniffCompression } from "../../core/oci/media-types.ts";
import { putHashed, R2_SINGLE_PUT_MAX, type BlobInfo, type BlobStore } from "./blobs.ts";
import { keys } from "./keys.ts";
import { digestOf, readOrInvalid } from "./streams.ts";

export interface UploadSession {
  uuid: string;
  repo: string;
  /** ms since epoch */
  created: number;
  updated: number;
  /** Bytes received so far. */
  offset: number;
  partSize: number;
  uploadId?: string;
  parts: R2UploadedPart[];
  /** The first bytes of the blob, hex: enough to tell its compression when it completes. */
  head?: string;
  /** The bytes so far are one streamed object at data/<uuid>, hashed to `digest`. */
  whole?: boolean;
  digest?: Digest;
}

/**
 * Part writes that may overlap reading the body. Each holds a part-sized buffer, and an isolate's
 * 128 MB is shared by concurrent requests: one in flight plus one filling keeps a chunked PATCH
 * at 20 MiB while R2 writes still overlap the reading.
 */
const MAX_INFLIGHT_PARTS = 1;
export const DEFAULT_PART_SIZE = 10 * 1024 * 1024;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class UploadStore {
  private readonly bucket: R2Bucket;
  private readonly blobs: BlobStore;
  private readonly ttlMs: number;
  private readonly partSize: number;

  constructor(bucket: R2Bucket, blobs: BlobStore, ttlSeconds: number, partSize = DEFAULT_PART_SIZE) {
    this.bucket = bucket;
    this.blobs = blobs;
    this.ttlMs = ttlSeconds * 1000;
    this.partSize = partSize;
  }

  async create(repo: string): Promise<UploadSession> {
    const now = Date.now();
    const session: UploadSession = {
      uuid: crypto.randomUUID(),
      repo,
      created: now,
      updated: now,
      offset: 0,
      partSize: this.partSize,
      parts: [],
    };
    await this.save(session);
    return session;
  }

  /** The session, if it exists, belongs to `repo` and has not gone stale. */
  async get(repo: string, uuid: string): Promise<UploadSession> {
    const unknown = () => new RegistryError("BLOB_UPLOAD_UNKNOWN", undefined, { uuid: uuid.slice(0, 80) });
    if (!UUID_RE.test(uuid)) throw unknown();
    const obj = await this.bucket.get(keys.upload(uuid));
    if (!obj) throw unknown();
    const session = (await obj.json()) as UploadSession;
    if (session.repo !== repo) throw unknown();
    if (Date.now() - session.updated > this.ttlMs) {
      await this.cancel(session);
      throw new RegistryError("BLOB_UPLOAD_UNKNOWN", "upload session expired", { uuid });
    }
    return session;
  }

  /**
   * Appends a chunk. When `expected` is given (Content-Length or Content-Range), the chunk must
   * have exactly that many bytes, or nothing is committed. `streamed` marks a PATCH without
   * Content-Range: the client means to send the blob in one request.
   */
  async append(
    session: UploadSession,
    body: ReadableStream<Uint8Array> | null,
    expected?: number,
    streamed = false,
  ): Promise<UploadSession> {
    if (streamed && body && session.offset === 0 && expected !== undefined && expected > session.partSize) {
      if (expected <= R2_SINGLE_PUT_MAX) return this.appendWhole(session, body, expected);
    }
    const next: UploadSession = { ...session, parts: [...session.parts] };
    delete next.whole;
    delete next.digest;
    const tailStart = session.parts.length * session.partSize;
    let buf = new Uint8Array(session.partSize);
    let fill = 0;
    if (!session.whole && session.offset > tailStart) {
      const bytes = await this.readTail(session);
      buf.set(bytes);
      fill = bytes.byteLength;
    }
    let received = 0;
    // Parts upload while the body is still being read: up to MAX_INFLIGHT_PARTS R2 writes overlap.
    const inflight: Promise<void>[] = [];
    const flush = async (full: Uint8Array) => {
      if (!next.uploadId) {
        const mpu = await this.bucket.createMultipartUpload(keys.data(session.uuid));
        next.uploadId = mpu.uploadId;
      }
      const mpu = this.bucket.resumeMultipartUpload(keys.data(session.uuid), next.uploadId);
      const partNumber = next.parts.length + 1;
      next.parts.push({ partNumber, etag: "" });
      next.parts[partNumber - 1] = await mpu.uploadPart(partNumber, full);
    };
    // A streamed object that gets more chunks is cut into parts first, its bytes ahead of the new ones.
    let source = body;
    if (session.whole) {
      const first = await this.bucket.get(keys.data(session.uuid));
      if (!first)
        throw new RegistryError("BLOB_UPLOAD_UNKNOWN", "upload session data is missing", { uuid: session.uuid });
      source = concatStreams(first.body, body);
    }
    let fromBody = session.whole ? -session.offset : 0;
    if (source) {
      const reader = source.getReader();
      for (;;) {
        const r = await readOrInvalid(reader);
        if (r.done) break;
        let chunk = r.value;
        if (session.offset + fromBody === 0 && chunk.byteLength > 0) next.head = toHex(chunk.subarray(0, 8));
        fromBody += chunk.byteLength;
        received = Math.max(0, fromBody);
        if (expected !== undefined && received > expected) {
          await reader.cancel();
          throw sizeInvalid(expected, received);
        }
        while (chunk.byteLength > 0) {
          const take = Math.min(chunk.byteLength, buf.byteLength - fill);
          buf.set(chunk.subarray(0, take), fill);
          fill += take;
          chunk = chunk.subarray(take);
          if (fill === buf.byteLength) {
            // The first flush creates the multipart upload; later ones must see its id.
            if (!next.uploadId) await flush(buf);
            else {
              if (inflight.length >= MAX_INFLIGHT_PARTS) await inflight.shift();
              inflight.push(flush(buf));
            }
            buf = new Uint8Array(session.partSize);
            fill = 0;
          }
        }
      }
    }
    await Promise.all(inflight);
    if (expected !== undefined && received !== expected) throw sizeInvalid(expected, received);
    next.offset = session.offset + received;
    next.updated = Date.now();
    if (fill > 0) await this.bucket.put(keys.uploadTail(session.uuid, next.offset), buf.subarray(0, fill));
    await this.save(next);
    if (session.whole) await this.bucket.delete(keys.data(session.uuid));
    else if (session.offset > tailStart && session.offset !== next.offset) {
      await this.bucket.delete(keys.uploadTail(session.uuid, session.offset));
    }
    return next;
  }

  /** A streamed upload of known length: one R2 object, hashed as it arrives. */
  private async appendWhole(
    session: UploadSession,
    body: ReadableStream<Uint8Array>,
    length: number,
  ): Promise<UploadSession> {
    const { digest, head } = await putHashed(this.bucket, keys.data(session.uuid), body, length);
    const next: UploadSession = {
      ...session,
      offset: length,
      updated: Date.now(),
      whole: true,
      digest,
      head: toHex(head),
    };
    await this.save(next);
    return next;
  }

  /**
   * Closes the upload: the assembled bytes must hash to `digest`, or nothing is kept. Short uploads
   * (under one part) are hashed in memory and stored as one object; long ones complete their
   * multipart object and stream it once through the native hash.
   */
  async complete(session: UploadSession, digest: Digest): Promise<BlobInfo> {
    let info: BlobInfo;
    try {
      info = await this.assemble(session, digest);
    } catch (e) {
      // A digest mismatch ends the session too: the spec leaves no way to retry a PUT.
      await this.forget(session, true);
      throw e;
    }
    await this.forget(session, false);
    return info;
  }

  private async assemble(session: UploadSession, digest: Digest): Promise<BlobInfo> {
    const dataKey = keys.data(session.uuid);
    const compression = sniffCompression(session.head ? unhex(session.head) : new Uint8Array(0));
    if (session.whole) {
      // Hashed while it streamed in: verified without reading the bytes back.
      if (session.digest !== digest) {
        throw new RegistryError("DIGEST_INVALID", undefined, { expected: digest, computed: session.digest });
      }
      return this.blobs.adopt(digest, dataKey, session.offset, compression);
    }
    const tailStart = session.parts.length * session.partSize;
    const tail = session.offset > tailStart ? await this.readTail(session) : new Uint8Array(0);
    if (!session.uploadId) {
      const computed = await sha256(tail);
      if (computed !== digest) throw new RegistryError("DIGEST_INVALID", undefined, { expected: digest, computed });
      return this.blobs.putBytes(digest, tail);
    }
    const mpu = this.bucket.resumeMultipartUpload(dataKey, session.uploadId);
    const parts = [...session.parts];
    if (tail.byteLength > 0) parts.push(await mpu.uploadPart(parts.length + 1, tail));
    await mpu.complete(parts);
    const obj = await this.bucket.get(dataKey);
    if (!obj) throw new Error(`multipart object ${dataKey} vanished after completion`);
    const hashed = await digestOf(obj.body);
    if (hashed.digest !== digest) {
      await this.bucket.delete(dataKey);
      throw new RegistryError("DIGEST_INVALID", undefined, { expected: digest, computed: hashed.digest });
    }
    return this.blobs.adopt(digest, dataKey, hashed.size, compression);
  }

  /** Cancels an upload and frees everything it stored. */
  async cancel(session: UploadSession): Promise<void> {
    await this.forget(session, true);
  }

  /** Drops the session's state; with `abort`, also the bytes it stored. */
  private async forget(session: UploadSession, abort: boolean): Promise<void> {
    if (abort && session.whole) await this.bucket.delete(keys.data(session.uuid));
    if (abort && session.uploadId) {
      try {
        await this.bucket.resumeMultipartUpload(keys.data(session.uuid), session.uploadId).abort();
      } catch {
        // Already completed or aborted: nothing left to free.
      }
    }
    const tails = await this.bucket.list({ prefix: keys.uploadTailPrefix(session.uuid) });
    const stale = tails.objects.map((o) => o.key);
    await this.bucket.delete([...stale, keys.upload(session.uuid)]);
  }

  private async readTail(session: UploadSession): Promise<Uint8Array> {
    const tail = await this.bucket.get(keys.uploadTail(session.uuid, session.offset));
    if (!tail) throw new RegistryError("BLOB_UPLOAD_UNKNOWN", "upload session data is missing", { uuid: session.uuid });
    return new Uint8Array(await tail.arrayBuffer());
  }

  private async save(session: UploadSession): Promise<void> {
    await this.bucket.put(keys.upload(session.uuid), JSON.stringify(session), {
      httpMetadata: { contentType: "application/json" },
    });
  }
}

function sizeInvalid(expected: number, received: number): RegistryError {
  return new RegistryError("SIZE_INVALID", "chunk length does not match the declared length", { expected, received });
}

/** One stream of `a`'s bytes, then `b`'s. */
function concatStreams(
  a: ReadableStream<Uint8Array>,
  b: ReadableStream<Uint8Array> | null,
): ReadableStream<Uint8Array> {
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  void (async () => {
    try {
      await a.pipeTo(writable, { preventClose: true });
      if (b) await b.pipeTo(writable, { preventClose: true });
      await writable.close();
    } catch (e) {
      await writable.abort(e).catch(() => undefined);
    }
  })();
  return readable;
}

function unhex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
}
