/**
 * Upload sessions, kept in R2 so that every request (wherever it lands) reads them consistently.
 *
 * Chunks of any size are cut into R2 multipart parts of exactly `partSize` bytes (R2 wants every
 * part but the last the same size, at least 5 MiB). Bytes past the last full part are kept as a
 * small "tail" object until more arrive or the upload closes. Large blobs therefore never exist as
 * a single-put object and are never copied: the completed multipart object is the blob (up to
 * 10,000 parts, far beyond R2's 5 GiB single-object limit). State is committed only after a chunk
 * is fully stored, so a chunk that fails half-way leaves the session as it was.
 */
import type { Digest } from "../../core/oci/digest.ts";
import { sha256, toHex } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import { sniffCompression } from "../../core/oci/media-types.ts";
import type { BlobInfo, BlobStore } from "./blobs.ts";
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
  /** sha256 of all bytes received, when they all came in the first chunk (see append). */
  digest?: Digest | undefined;
}

/** Where a completing upload may put the bytes it reads anyway (the edge cache). */
export interface CacheWarmer {
  maxBytes: number;
  put(size: number, body: ReadableStream<Uint8Array>): Promise<void>;
  discard(): Promise<void>;
  /** Runs work after the response (ctx.waitUntil). */
  defer(work: Promise<void>): void;
}

const MAX_INFLIGHT_PARTS = 3;
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
   * have exactly that many bytes, or nothing is committed.
   */
  async append(
    session: UploadSession,
    body: ReadableStream<Uint8Array> | null,
    expected?: number,
  ): Promise<UploadSession> {
    const next: UploadSession = { ...session, parts: [...session.parts] };
    const tailStart = session.parts.length * session.partSize;
    let buf = new Uint8Array(session.partSize);
    let fill = 0;
    if (session.offset > tailStart) {
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
    // A chunk that starts the upload is hashed natively as it streams. DigestStream cannot resume
    // in a later request, but most clients (skopeo, containerd, docker) send a blob in one PATCH:
    // for them the digest is known at PUT, and the assembled object need not be read back.
    let source = body;
    let hashing: Promise<{ digest: Digest; size: number }> | undefined;
    if (body && session.offset === 0) {
      const [mine, toHash] = body.tee();
      source = mine;
      hashing = digestOf(toHash);
      hashing.catch(() => undefined);
    }
    next.digest = undefined;
    if (source) {
      const reader = source.getReader();
      for (;;) {
        const r = await readOrInvalid(reader);
        if (r.done) break;
        let chunk = r.value;
        if (next.offset + received === 0 && chunk.byteLength > 0) next.head = toHex(chunk.subarray(0, 8));
        received += chunk.byteLength;
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
    if (hashing) next.digest = (await hashing).digest;
    if (expected !== undefined && received !== expected) throw sizeInvalid(expected, received);
    next.offset = session.offset + received;
    next.updated = Date.now();
    if (fill > 0) await this.bucket.put(keys.uploadTail(session.uuid, next.offset), buf.subarray(0, fill));
    await this.save(next);
    if (session.offset > tailStart && session.offset !== next.offset) {
      await this.bucket.delete(keys.uploadTail(session.uuid, session.offset));
    }
    return next;
  }

  /**
   * Closes the upload: the assembled bytes must hash to `digest`, or nothing is kept. Short uploads
   * (under one part) are hashed in memory and stored as one object; long ones complete their
   * multipart object and stream it once through the native hash.
   */
  async complete(session: UploadSession, digest: Digest, warm?: CacheWarmer): Promise<BlobInfo> {
    const tailStart = session.parts.length * session.partSize;
    const tail = session.offset > tailStart ? await this.readTail(session) : new Uint8Array(0);
    try {
      if (!session.uploadId) {
        const computed = await sha256(tail);
        if (computed !== digest) throw new RegistryError("DIGEST_INVALID", undefined, { expected: digest, computed });
        return await this.blobs.putBytes(digest, tail);
      }
      const dataKey = keys.data(session.uuid);
      const mpu = this.bucket.resumeMultipartUpload(dataKey, session.uploadId);
      const head = sniffCompression(session.head ? unhex(session.head) : new Uint8Array(0));
      if (session.digest) {
        // Hashed while it arrived in one chunk: verified without reading the bytes back.
        if (session.digest !== digest) {
          throw new RegistryError("DIGEST_INVALID", undefined, { expected: digest, computed: session.digest });
        }
        const parts = [...session.parts];
        if (tail.byteLength > 0) parts.push(await mpu.uploadPart(parts.length + 1, tail));
        await mpu.complete(parts);
        const info = await this.blobs.adopt(digest, dataKey, session.offset, head);
        if (warm && info.size <= warm.maxBytes) warm.defer(this.warmFrom(info.location, info.size, warm));
        return info;
      }
      const parts = [...session.parts];
      if (tail.byteLength > 0) parts.push(await mpu.uploadPart(parts.length + 1, tail));
      await mpu.complete(parts);
      const obj = await this.bucket.get(dataKey);
      if (!obj) throw new Error(`multipart object ${dataKey} vanished after completion`);
      // The bytes must be read once to verify them; the same read can fill the edge cache, so the
      // first pull is served from there rather than by assembling parts again.
      let toHash = obj.body;
      let warming: Promise<void> | undefined;
      if (warm && obj.size <= warm.maxBytes) {
        const [a, b] = obj.body.tee();
        toHash = a;
        warming = warm.put(obj.size, b);
      }
      const hashed = await digestOf(toHash);
      await warming;
      if (hashed.digest !== digest) {
        if (warming) await warm?.discard();
        await this.bucket.delete(dataKey);
        throw new RegistryError("DIGEST_INVALID", undefined, { expected: digest, computed: hashed.digest });
      }
      return await this.blobs.adopt(digest, dataKey, hashed.size, head);
    } finally {
      // Success or digest mismatch, the session is over: the spec leaves no way to retry a PUT.
      // (abort is a no-op for a multipart upload that completed.)
      await this.forget(session, true);
    }
  }

  /** Fills the edge cache from a stored object, after the response has gone. */
  private async warmFrom(location: string, size: number, warm: CacheWarmer): Promise<void> {
    const obj = await this.bucket.get(location);
    if (obj) await warm.put(size, obj.body);
  }

  /** Cancels an upload and frees everything it stored. */
  async cancel(session: UploadSession): Promise<void> {
    await this.forget(session, true);
  }

  private async forget(session: UploadSession, abort: boolean): Promise<void> {
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

function unhex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
}
