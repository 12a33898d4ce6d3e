/**
 * Upload sessions, kept in R2 so that every request (wherever it lands) reads them consistently.
 *
 * Every request that carries bytes (a PATCH, or the PUT that closes with a last chunk) writes them
 * as its own *piece*: a new object `data/<uuid>/<start>-<nonce>` that no other request writes.
 * Only then does it commit, by a put of the session conditional on the etag it read. Of two
 * requests racing on one session, exactly one commit lands; the other deletes its piece and is
 * told what happened (416 with the session's Range, or 404 when the session is over). A request
 * that fails half-way leaves the session as it was.
 *
 * States: `open` takes chunks; `closing` belongs to the one PUT that won it (it verifies the bytes
 * and commits the blob); `cancelled` belongs to the one DELETE that won it (it frees the pieces).
 * Both end in the deletion of the session object, and nothing moves a session out of them, so
 * PUT/PUT, PUT/DELETE and DELETE/DELETE each have one winner and the loser gets 404.
 *
 * A body of known length streams into one piece, hashed natively as it arrives; a body without a
 * length is cut into pieces of `bufferSize` (R2 needs each object's length up front). A blob made
 * of one streamed piece is verified at close without reading it back; a blob of several is read
 * once, in order, through the native hash. Its pieces stay where they were written (R2 has no
 * rename or copy) and a small table lists them: serving streams them in order (blobs.ts).
 *
 * Bytes are hashed in line with sha256, the algorithm nearly every client names, unless the caller
 * knows the digest already (a monolithic upload of unknown length). A session closed with a digest
 * of another algorithm (sha512) is read back once through that hash instead, as if in pieces.
 */
import type { Digest, DigestAlgorithm } from "../../core/oci/digest.ts";
import { algorithmOf, digestFromHash, HASH_NAMES, toHex } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import { sniffCompression } from "../../core/oci/media-types.ts";
import { R2_SINGLE_PUT_MAX, streamPieces, type BlobInfo, type BlobStore, type Piece } from "./blobs.ts";
import { deleteAll, IF_ABSENT, ifUnchanged, listAll, type Bucket } from "./bucket.ts";
import type { Clock } from "./clock.ts";
import { BLOCK_BYTES, BlockSource, headOf, putBlocks } from "./blocks.ts";
import { keys } from "./keys.ts";
import { fromStorage, StorageError } from "./storage-error.ts";
import { digestOf, readOrInvalid } from "./streams.ts";

export type SessionState = "open" | "closing" | "cancelled";

export interface UploadSession {
  uuid: string;
  repo: string;
  state: SessionState;
  /** ms since epoch */
  created: number;
  updated: number;
  /** Bytes received so far. */
  offset: number;
  pieces: Piece[];
  /** The first bytes of the blob, hex: enough to tell its compression when it completes. */
  head?: string;
  /** The digest of all bytes so far, when they arrived as one request hashed on the way in. */
  digest?: Digest;
  /** The digest the PUT that moved the session to `closing` closes it with: a retry of that PUT finishes it. */
  closing?: Digest;
  /** A fresh value on every write: R2's etag is the content's MD5, and each write must have its own. */
  rev: string;
}

/**
 * A session write that failed and whose outcome cannot be told (the read-back failed too): what it
 * wrote may be part of the session, so nothing of it is deleted.
 */
class UnsureWrite extends StorageError {
  constructor(cause: unknown) {
    super("upload session write", cause);
  }
}

/** A session with the etag it was read with: the condition for its next write. */
export interface Loaded {
  session: UploadSession;
  etag: string;
}

/** Pieces one upload may have: R2 multipart's limit, kept so that a table stays small. */
export const MAX_PIECES = 10_000;
/**
 * A body without a length is buffered into pieces of this size. Each holds a buffer, and an
 * isolate's 128 MB is shared by concurrent requests: one in flight plus one filling is 32 MiB.
 */
export const DEFAULT_BUFFER_SIZE = 16 * 1024 * 1024;
/** Why a request that lost a race on an open session gets 416. */
const MOVED_ON = "another request changed the upload first";
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class UploadStore {
  private readonly bucket: Bucket;
  private readonly blobs: BlobStore;
  private readonly clock: Clock;
  private readonly ttlMs: number;
  private readonly bufferSize: number;

  constructor(bucket: Bucket, blobs: BlobStore, clock: Clock, ttlSeconds: number, bufferSize = DEFAULT_BUFFER_SIZE) {
    this.bucket = bucket;
    this.blobs = blobs;
    this.clock = clock;
    this.ttlMs = ttlSeconds * 1000;
    this.bufferSize = bufferSize;
  }

  async create(repo: string): Promise<Loaded> {
    const now = this.clock.now();
    const session: UploadSession = {
      uuid: crypto.randomUUID(),
      repo,
      state: "open",
      created: now,
      updated: now,
      offset: 0,
      pieces: [],
      rev: crypto.randomUUID(),
    };
    const created = await this.confirmed(
      session.uuid,
      () =>
        this.bucket.put(keys.upload(session.uuid), JSON.stringify(session), {
          onlyIf: IF_ABSENT,
          httpMetadata: { contentType: "application/json" },
        }),
      (stored) => stored.rev === session.rev,
      session,
    );
    if (!created) throw new Error("upload session id collision");
    return created;
  }

  /**
   * The open session, if it exists, belongs to `repo` and has not gone stale. `closing` also takes
   * a session a PUT sealed: the one that PUT's digest closes (a retry of it finishes the session),
   * or, with `any`, whichever (a client asking where its upload is).
   */
  async get(repo: string, uuid: string, closing?: Digest | "any"): Promise<Loaded> {
    if (!UUID_RE.test(uuid)) throw unknown(uuid.slice(0, 80));
    const loaded = await this.read(uuid);
    if (!loaded || loaded.session.repo !== repo || !takes(loaded.session, closing)) throw unknown(uuid);
    if (this.clock.now() - loaded.session.updated > this.ttlMs) {
      await this.cancel(loaded).catch(() => undefined);
      throw new RegistryError("BLOB_UPLOAD_UNKNOWN", "upload session expired", { uuid });
    }
    return loaded;
  }

  /**
   * Appends a request's bytes. When `expected` is given (Content-Length or Content-Range), the
   * request must carry exactly that many bytes, or nothing is committed. The bytes are hashed in
   * line with `algorithm`: the one of the digest that will close the upload, when it is known.
   */
  async append(
    loaded: Loaded,
    body: ReadableStream<Uint8Array> | null,
    expected?: number,
    algorithm: DigestAlgorithm = "sha256",
  ): Promise<Loaded> {
    const { session } = loaded;
    const written: Piece[] = [];
    // What this request wrote belongs to no session until its commit lands.
    const dropWritten = () =>
      deleteAll(
        this.bucket,
        written.map((p) => p.key),
      );
    let received: { size: number; digest: Digest; head: Uint8Array };
    try {
      received = await this.writePieces(session, body, expected, written, algorithm);
    } catch (e) {
      await dropWritten().catch(() => undefined);
      throw e;
    }
    if (session.pieces.length + written.length > MAX_PIECES) {
      await dropWritten();
      throw new RegistryError("BLOB_UPLOAD_INVALID", `an upload takes at most ${MAX_PIECES} chunks`, {
        uuid: session.uuid,
      });
    }
    const next: UploadSession = {
      ...session,
      offset: session.offset + received.size,
      pieces: [...session.pieces, ...written],
      updated: this.clock.now(),
      rev: crypto.randomUUID(),
    };
    delete next.digest;
    if (session.offset === 0 && received.size > 0) {
      next.head = toHex(received.head);
      next.digest = received.digest;
    } else if (session.offset === 0) {
      delete next.head;
    }
    let committed: Loaded | null;
    try {
      // A lost answer is told by the state read back: it lists these pieces only if the write landed.
      committed = await this.write(next, loaded.etag, (stored) =>
        written.every((p) => stored.pieces.some((q) => q.key === p.key)),
      );
    } catch (e) {
      // Not part of the session, unless it cannot be told; then the session keeps them named until it ends.
      if (!(e instanceof UnsureWrite)) await dropWritten().catch(() => undefined);
      throw e;
    }
    if (committed) return committed;
    // Another request changed the session first: these bytes were never part of it.
    await dropWritten();
    throw await this.lostRace(session);
  }

  /**
   * Closes the upload: the assembled bytes must hash to `digest`, or nothing is kept. The session
   * moves to `closing` first, so that no PATCH, DELETE or PUT with another digest can change it
   * meanwhile. Every step after that claim can be done again: a retry of this PUT (the same digest)
   * whose first attempt failed, or died, after sealing the session finishes it.
   */
  async complete(loaded: Loaded, digest: Digest): Promise<BlobInfo> {
    const { session } = await this.claim(loaded, "closing", digest);
    let own: BlobInfo;
    try {
      own = await this.assemble(session, digest);
    } catch (e) {
      // A digest mismatch ends the session: the spec leaves no way to retry a PUT. A storage fault
      // leaves it sealed, pieces and all, for the client's retry (or the collector, once it expires).
      if (e instanceof RegistryError) await this.free(session);
      throw e;
    }
    // Not commitOwn: on a failure the pieces stay, named by the session, for the retry to commit.
    const info = (await this.blobs.commit(session.repo, digest, own))!;
    // The blob is committed; a piece or session left by a failure here is the collector's.
    await this.forget(session, info).catch(() => undefined);
    return info;
  }

  /**
   * Closes the session with a blob the PUT carries whole: `store` stores and commits the body as a
   * monolithic upload once this request owns the session (a racing PATCH, PUT or DELETE then gets
   * 404). The session ends with it, unless storage failed: a retry of the PUT takes it up again.
   */
  async closeWhole(loaded: Loaded, digest: Digest, store: () => Promise<BlobInfo>): Promise<BlobInfo> {
    const claimed = await this.claim(loaded, "closing", digest);
    let info: BlobInfo;
    try {
      info = await store();
    } catch (e) {
      if (e instanceof RegistryError) await this.free(claimed.session).catch(() => undefined);
      throw e;
    }
    await this.free(claimed.session).catch(() => undefined);
    return info;
  }

  /** Cancels an upload and frees everything it stored. */
  async cancel(loaded: Loaded): Promise<void> {
    const claimed = await this.claim(loaded, "cancelled");
    await this.free(claimed.session);
  }

  /**
   * Moves an open session to a final state; exactly one of several racing requests succeeds. A
   * session some PUT sealed with `digest` already is taken as it is: closing it again is safe.
   */
  private async claim(loaded: Loaded, state: Exclude<SessionState, "open">, digest?: Digest): Promise<Loaded> {
    let current = loaded;
    const mine = (s: UploadSession): boolean => s.state === state && (state !== "closing" || s.closing === digest);
    for (;;) {
      if (mine(current.session)) return current;
      const next: UploadSession = {
        ...current.session,
        state,
        ...(state === "closing" && digest ? { closing: digest } : {}),
        updated: this.clock.now(),
        rev: crypto.randomUUID(),
      };
      const written = await this.write(next, current.etag, mine);
      if (written) return written;
      const fresh = await this.read(current.session.uuid);
      if (!fresh || fresh.session.state !== "open") throw unknown(current.session.uuid);
      // A DELETE wins over a chunk that landed meanwhile; a PUT does not close bytes it never saw.
      if (state === "closing") throw outOfOrder(fresh.session, MOVED_ON);
      current = fresh;
    }
  }

  private async assemble(session: UploadSession, digest: Digest): Promise<BlobInfo> {
    const compression = sniffCompression(session.head ? unhex(session.head) : new Uint8Array(0));
    const algorithm = algorithmOf(digest);
    if (session.pieces.length === 0) {
      const empty = await digestOf(new Blob([]).stream() as ReadableStream<Uint8Array>, algorithm);
      if (empty.digest !== digest) {
        throw new RegistryError("DIGEST_INVALID", undefined, { expected: digest, computed: empty.digest });
      }
      const loc = keys.piece(session.uuid, 0, crypto.randomUUID());
      await this.bucket.put(loc, new Uint8Array(0), { httpMetadata: { contentType: "application/octet-stream" } });
      return { digest, size: 0, compression, loc, pieces: 1 };
    }
    // Hashed while it streamed in, when it arrived in one request and with the algorithm of the
    // digest it closes with: verified without reading it back.
    let computed = session.digest && algorithmOf(session.digest) === algorithm ? session.digest : undefined;
    if (computed === undefined) {
      // Read in 1 MiB blocks: JavaScript once per block, not per chunk (the pieces' lengths are known).
      const hasher = new crypto.DigestStream(HASH_NAMES[algorithm]);
      const hash = hasher.getWriter();
      const source = new BlockSource(streamPieces(this.bucket, session.pieces, undefined, digest), fromStorage);
      for (let block = await source.read(BLOCK_BYTES); block; block = await source.read(BLOCK_BYTES)) {
        await hash.write(block);
      }
      await hash.close();
      computed = digestFromHash(algorithm, await hasher.digest);
    }
    if (computed !== digest) throw new RegistryError("DIGEST_INVALID", undefined, { expected: digest, computed });
    if (session.pieces.length === 1) {
      return { digest, size: session.offset, compression, loc: session.pieces[0]!.key, pieces: 1 };
    }
    const loc = keys.pieceTable(session.uuid);
    await this.bucket.put(loc, JSON.stringify(session.pieces), { httpMetadata: { contentType: "application/json" } });
    return { digest, size: session.offset, compression, loc, pieces: session.pieces.length };
  }

  /** After a close: the session object goes, and so does any piece the committed blob does not use. */
  private async forget(session: UploadSession, kept: BlobInfo): Promise<void> {
    const ours = kept.loc.startsWith(keys.piecesPrefix(session.uuid));
    await this.free(session, ours ? new Set([kept.loc, ...session.pieces.map((p) => p.key)]) : new Set());
  }

  /** Deletes a session's state and the pieces under it, but those in `keep`. */
  private async free(session: UploadSession, keep: ReadonlySet<string> = new Set()): Promise<void> {
    const pieces: string[] = [];
    for await (const o of listAll(this.bucket, keys.piecesPrefix(session.uuid)))
      if (!keep.has(o.key)) pieces.push(o.key);
    await deleteAll(this.bucket, pieces);
    await this.bucket.delete(keys.upload(session.uuid));
  }

  /** The error for a request whose session changed under it. */
  private async lostRace(session: UploadSession): Promise<RegistryError> {
    const fresh = await this.read(session.uuid);
    if (!fresh || fresh.session.state !== "open") return unknown(session.uuid);
    return outOfOrder(fresh.session, MOVED_ON);
  }

  /**
   * Reads the body into new pieces: one streamed piece for a known length (up to R2's single-put
   * limit, more pieces past it), or buffered pieces for an unknown one. Returns what was received,
   * hashed in line with `algorithm`.
   */
  private async writePieces(
    session: UploadSession,
    body: ReadableStream<Uint8Array> | null,
    expected: number | undefined,
    written: Piece[],
    algorithm: DigestAlgorithm,
  ): Promise<{ size: number; digest: Digest; head: Uint8Array }> {
    const hasher = new crypto.DigestStream(HASH_NAMES[algorithm]);
    const hash = hasher.getWriter();
    let head: Uint8Array = new Uint8Array(0);
    let size = 0;
    const record = async (chunk: Uint8Array): Promise<void> => {
      head = headOf(head, chunk);
      size += chunk.byteLength;
      if (expected !== undefined && size > expected) throw sizeInvalid(expected, size);
      await hash.write(chunk);
    };
    const start = session.offset;
    const newKey = () => keys.piece(session.uuid, start + size, crypto.randomUUID().slice(0, 8));
    if (body && expected !== undefined && expected > 0) {
      const source = new BlockSource(body);
      while (size < expected) {
        const length = Math.min(expected - size, R2_SINGLE_PUT_MAX);
        const key = newKey();
        written.push({ key, size: length });
        const got = await putBlocks(this.bucket, key, source, length, record, {
          httpMetadata: { contentType: "application/octet-stream" },
        });
        if (got < length) break; // The body ended early: SIZE_INVALID below.
      }
      const surplus = await source.rest();
      if (surplus > 0) throw sizeInvalid(expected, size + surplus);
    } else if (body) {
      const reader = body.getReader();
      let buf = new Uint8Array(this.bufferSize);
      let fill = 0;
      let inflight: Promise<unknown> | undefined;
      const flush = async (bytes: Uint8Array, at: number) => {
        const key = keys.piece(session.uuid, at, crypto.randomUUID().slice(0, 8));
        written.push({ key, size: bytes.byteLength });
        await this.bucket.put(key, bytes, { httpMetadata: { contentType: "application/octet-stream" } });
      };
      let flushed = start;
      for (;;) {
        const r = await readOrInvalid(reader);
        if (r.done) break;
        await record(r.value);
        let chunk = r.value;
        while (chunk.byteLength > 0) {
          const take = Math.min(chunk.byteLength, buf.byteLength - fill);
          buf.set(chunk.subarray(0, take), fill);
          fill += take;
          chunk = chunk.subarray(take);
          if (fill === buf.byteLength) {
            // One write in flight while the next buffer fills.
            await inflight;
            inflight = flush(buf, flushed);
            // Awaited on the next flush or at the end; a failure meanwhile is not an unhandled rejection.
            inflight.catch(() => undefined);
            flushed += buf.byteLength;
            buf = new Uint8Array(this.bufferSize);
            fill = 0;
          }
        }
      }
      await inflight;
      if (fill > 0) await flush(buf.subarray(0, fill), flushed);
    }
    await hash.close();
    if (expected !== undefined && size !== expected) throw sizeInvalid(expected, size);
    return { size, digest: digestFromHash(algorithm, await hasher.digest), head };
  }

  private async read(uuid: string): Promise<Loaded | null> {
    const obj = await this.bucket.get(keys.upload(uuid));
    if (!obj) return null;
    return { session: (await obj.json()) as UploadSession, etag: obj.etag };
  }

  /**
   * Writes the session if it is still as read with `etag`; null when another request changed it
   * first. `landed` tells, from the state read back, whether a write whose answer was lost happened.
   */
  private async write(
    session: UploadSession,
    etag: string,
    landed: (stored: UploadSession) => boolean = (stored) => stored.rev === session.rev,
  ): Promise<Loaded | null> {
    const json = JSON.stringify(session);
    return this.confirmed(
      session.uuid,
      () =>
        this.bucket.put(keys.upload(session.uuid), json, {
          onlyIf: ifUnchanged(etag),
          httpMetadata: { contentType: "application/json" },
        }),
      landed,
      session,
    );
  }

  /**
   * Runs a put of session state. When it fails, its answer may have been lost with the write done
   * (R2 said so, and then the connection dropped): the session is read back, and if `landed` finds
   * this write in it, that is the answer (a later state, when another request built on it since).
   * Otherwise the error stands; an UnsureWrite when even the read-back failed.
   */
  private async confirmed(
    uuid: string,
    put: () => Promise<R2Object | null>,
    landed: (stored: UploadSession) => boolean,
    session: UploadSession,
  ): Promise<Loaded | null> {
    let written: R2Object | null;
    try {
      written = await put();
    } catch (e) {
      let stored: Loaded | null;
      try {
        stored = await this.read(uuid);
      } catch {
        throw new UnsureWrite(e);
      }
      if (stored && landed(stored.session)) return stored;
      throw e;
    }
    return written ? { session, etag: written.etag } : null;
  }
}

/** Whether a request may use the session in its state (see UploadStore.get). */
function takes(session: UploadSession, closing: Digest | "any" | undefined): boolean {
  if (session.state === "open") return true;
  return session.state === "closing" && closing !== undefined && (closing === "any" || session.closing === closing);
}

function unknown(uuid: string): RegistryError {
  return new RegistryError("BLOB_UPLOAD_UNKNOWN", undefined, { uuid });
}

function sizeInvalid(expected: number, received: number): RegistryError {
  return new RegistryError("SIZE_INVALID", "chunk length does not match the declared length", { expected, received });
}

/** 416 with the session's progress, so that the client can resume from it. */
export function outOfOrder(
  session: UploadSession,
  message: string,
  detail: Record<string, unknown> = {},
): RegistryError {
  return new RegistryError(
    "RANGE_INVALID",
    message,
    { expectedStart: session.offset, ...detail },
    {
      Range: `0-${Math.max(0, session.offset - 1)}`,
      "Docker-Upload-UUID": session.uuid,
    },
  );
}

function unhex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
}
