/**
 * Blob storage. Bytes are written once, under a fresh `data/<id>` that no other request writes,
 * and never overwritten. A blob is *committed* into a repository by the protocol in `commit`
 * (docs/storage.md): the global record `blobs/<alg>/<hex>` is created only if absent, so every
 * repository converges on one copy, and the repository's link carries the location of the bytes
 * it relies on. The collector keeps every `data/<id>` that a record or a link names.
 */
import type { Digest } from "../../core/oci/digest.ts";
import { algorithmOf, digestFromHash, hexOf, HASH_NAMES } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import { sniffCompression, type Compression } from "../../core/oci/media-types.ts";
import { deleteAll, IF_ABSENT, ifUnchanged, listAll, type Bucket } from "./bucket.ts";
import { dataIdOf, digestFromKey, keys } from "./keys.ts";
import { BLOCK_BYTES, BlockSource, headOf, putBlocks } from "./blocks.ts";
import type { Clock } from "./clock.ts";
import { intentBlocks } from "./intent.ts";

/**
 * Where a blob's bytes are: one object (`pieces` 1, `loc` is its key), or several pieces in
 * order (`loc` is the key of their table, data/<id>/table).
 */
export interface BlobLocation {
  loc: string;
  pieces: number;
}

export interface BlobInfo extends BlobLocation {
  digest: Digest;
  size: number;
  compression: Compression;
}

export interface ByteRange {
  offset: number;
  length: number;
}

/** One piece of a blob made of several: its key and length, in order. */
export interface Piece {
  key: string;
  size: number;
}

/** R2's limit for a single-part object. */
export const R2_SINGLE_PUT_MAX = 5 * 1024 ** 3 - 5 * 1024 ** 2;

/**
 * How often a commit tries when a collection is deleting the copy it found. A collection's intent
 * holds for at most INTENT_TTL_MS (it finishes in well under a second); waits doubling from 100 ms
 * outlast it, after which the client is told to retry.
 */
const COMMIT_ATTEMPTS = 11;

function toMeta(info: BlobInfo): Record<string, string> {
  return { size: String(info.size), comp: info.compression, loc: info.loc, n: String(info.pieces) };
}

/** A BlobInfo from the customMetadata of a link or record; null for a withdrawn link. */
export function blobInfoFromMeta(digest: Digest, meta: Record<string, string> | undefined): BlobInfo | null {
  if (!meta?.loc || meta.state === "withdrawn") return null;
  return {
    digest,
    size: Number(meta.size),
    compression: (meta.comp as Compression | undefined) ?? "none",
    loc: meta.loc,
    pieces: Number(meta.n ?? 1),
  };
}

/** A unique body: R2's etag is the MD5 of the content, and a conditional write needs one no other write shares. */
const nonce = (): string => crypto.randomUUID();

export class BlobStore {
  private readonly bucket: Bucket;
  private readonly clock: Clock;
  constructor(bucket: Bucket, clock: Clock) {
    this.bucket = bucket;
    this.clock = clock;
  }

  /** The blob as linked into `repo`, or null when the repository does not have it. */
  async stat(repo: string, digest: Digest): Promise<BlobInfo | null> {
    const link = await this.bucket.head(keys.blobLink(repo, digest));
    return link ? blobInfoFromMeta(digest, link.customMetadata) : null;
  }

  /** The repository's links for many digests: by HEAD for a few, by listing the links for many. */
  async statMany(repo: string, digests: Iterable<Digest>): Promise<Map<Digest, BlobInfo>> {
    const wanted = new Set(digests);
    const out = new Map<Digest, BlobInfo>();
    if (wanted.size <= 256) {
      await Promise.all(
        [...wanted].map(async (d) => {
          const info = await this.stat(repo, d);
          if (info) out.set(d, info);
        }),
      );
      return out;
    }
    const prefix = keys.blobLinksPrefix(repo);
    for await (const o of listAll(this.bucket, prefix, ["customMetadata"])) {
      const d = digestFromKey(o.key);
      if (!wanted.has(d)) continue;
      const info = blobInfoFromMeta(d, o.customMetadata);
      if (info) out.set(d, info);
    }
    return out;
  }

  /** The blob as recorded globally, whichever repositories link it. */
  async statGlobal(digest: Digest): Promise<BlobInfo | null> {
    const rec = await this.bucket.head(keys.blob(digest));
    return rec ? blobInfoFromMeta(digest, rec.customMetadata) : null;
  }

  /** The blob's bytes (or a range of them), streamed from its one object or its pieces in order. */
  async open(info: BlobLocation & { digest: Digest }, range?: ByteRange): Promise<ReadableStream<Uint8Array>> {
    if (info.pieces <= 1) {
      const obj = await this.bucket.get(info.loc, range ? { range } : undefined);
      if (!obj) throw new RegistryError("BLOB_UNKNOWN", "blob data is missing", { digest: info.digest });
      return obj.body as ReadableStream<Uint8Array>;
    }
    const table = await this.bucket.get(info.loc);
    if (!table) throw new RegistryError("BLOB_UNKNOWN", "blob data is missing", { digest: info.digest });
    const pieces = (await table.json()) as Piece[];
    return streamPieces(this.bucket, pieces, range, info.digest);
  }

  /**
   * Commits a blob into `repo`: after it, the repository's link names bytes that the collector
   * will keep for as long as the link exists. `own` is a copy this request stored and verified;
   * without one (a mount) the blob must already be recorded. Answers the committed location, or null when there is nothing to commit.
   *
   * The protocol (docs/storage.md): (1) take the record, or create it from `own` if absent, only
   * if absent; (2) write the link; (3) read the collector's intent, then check the bytes are there.
   * The collector writes its intent before its last look at links and records, and deletes after
   * it: so either it sees this link and keeps the bytes, or this request sees the intent (or the
   * bytes gone) and tries again. A copy `own` that lost the race for the record is deleted.
   */
  async commit(repo: string, digest: Digest, own?: BlobInfo): Promise<BlobInfo | null> {
    const linkKey = keys.blobLink(repo, digest);
    for (let attempt = 0; attempt < COMMIT_ATTEMPTS; attempt++) {
      if (attempt > 0) await this.clock.sleep(100 * 2 ** (attempt - 1));
      let target = await this.statGlobal(digest);
      if (!target) {
        if (!own) return null;
        const created = await this.bucket.put(keys.blob(digest), nonce(), {
          onlyIf: IF_ABSENT,
          customMetadata: toMeta(own),
        });
        if (!created) continue; // Another request recorded it first: use that copy.
        target = own;
      }
      const link = await this.bucket.put(linkKey, nonce(), { customMetadata: toMeta(target) });
      if (await this.intact(target, linkKey)) {
        // Committed: a redundant copy that fails to go is named by nothing, and the collector's.
        if (own && own.loc !== target.loc) await this.discard(own).catch(() => undefined);
        return target;
      }
      // The collector is deleting these bytes: withdraw the link, unless a racing push rewrote it.
      await this.bucket.put(linkKey, nonce(), {
        onlyIf: ifUnchanged(link!.etag),
        customMetadata: { ...toMeta(target), state: "withdrawn" },
      });
    }
    throw new RegistryError(
      "UNAVAILABLE",
      "the blob is being collected; retry the upload",
      { digest },
      {
        "Retry-After": "5",
      },
    );
  }

  /** Whether the link and the bytes behind `info` stay: no collection intends to delete them, and both exist. */
  private async intact(info: BlobLocation, linkKey: string): Promise<boolean> {
    if (await intentBlocks(this.bucket, this.clock, { dataId: dataIdOf(info.loc), keys: [linkKey] })) return false;
    // Checked after the notes: a collection clears its note only once it has deleted.
    const [link, bytes] = await Promise.all([this.bucket.head(linkKey), this.bucket.head(info.loc)]);
    return link !== null && bytes !== null;
  }

  async unlink(repo: string, digest: Digest): Promise<boolean> {
    const key = keys.blobLink(repo, digest);
    const link = await this.bucket.head(key);
    if (!link || !blobInfoFromMeta(digest, link.customMetadata)) return false;
    await this.bucket.delete(key);
    return true;
  }

  /**
   * Stores a body of known length and commits it into `repo`. The body always streams into a copy
   * of its own, hashed natively on the way with the digest's algorithm (sha256 or sha512), and R2
   * refuses it unless it matches the digest: even when the blob is recorded already, since that
   * copy may be collected while this body arrives, and a body read only to hash it could not stand
   * in for it. A copy that turns out redundant is deleted by the commit.
   */
  async putStream(repo: string, digest: Digest, body: ReadableStream<Uint8Array>, length: number): Promise<BlobInfo> {
    const loc = keys.data(crypto.randomUUID());
    const stored = await putHashed(this.bucket, loc, body, length, { expect: digest });
    if (stored.digest !== digest) {
      throw new RegistryError("DIGEST_INVALID", undefined, { expected: digest, computed: stored.digest });
    }
    const own: BlobInfo = { digest, size: length, compression: stored.compression, loc, pieces: 1 };
    return this.commitOwn(repo, own);
  }

  /**
   * Whether `repo` has the blob, for a client that will skip its upload if so (a HEAD before a
   * push). A link older than `freshFor` is written again first, so that a collection that found
   * it unreferenced keeps it (it deletes only links unchanged since its snapshot, and names them
   * in an intent first); if a collection is about to delete it anyway, the answer is no, and the
   * client uploads the blob.
   */
  async vouch(repo: string, digest: Digest, freshFor: number): Promise<BlobInfo | null> {
    const key = keys.blobLink(repo, digest);
    const link = await this.bucket.head(key);
    const info = link ? blobInfoFromMeta(digest, link.customMetadata) : null;
    if (!link || !info) return null;
    if (this.clock.now() - link.uploaded.getTime() < freshFor) return info;
    const rewritten = await this.bucket.put(key, nonce(), {
      onlyIf: ifUnchanged(link.etag),
      customMetadata: toMeta(info),
    });
    if (!rewritten) return this.stat(repo, digest);
    return (await this.intact(info, key)) ? info : null;
  }

  /**
   * A blob fetched from elsewhere (a mirror's upstream, worker/upstream/mirror.ts), streamed to the
   * client and into a fresh R2 object at once, then committed into `repo`. The digest is checked as
   * the bytes pass: the last block is held back until it is known, so on a mismatch the client's
   * stream fails (short of its Content-Length) and the object is never written (R2 refuses it by
   * its checksum too). A client that hangs up does not stop the copy. Concurrent first GETs each
   * write a copy of their own; the commit protocol keeps one.
   */
  serveAndStore(
    repo: string,
    digest: Digest,
    body: ReadableStream<Uint8Array>,
    length: number,
    later: (work: Promise<unknown>) => void,
  ): ReadableStream<Uint8Array> {
    const algorithm = algorithmOf(digest);
    const loc = keys.data(crypto.randomUUID());
    const toR2 = new FixedLengthStream(length);
    const put = this.bucket.put(loc, toR2.readable, {
      [algorithm]: hexOf(digest),
      httpMetadata: { contentType: "application/octet-stream" },
    });
    put.catch(() => undefined);
    const client = new FixedLengthStream(length);
    const store = toR2.writable.getWriter();
    const serve = client.writable.getWriter();
    const hasher = new crypto.DigestStream(HASH_NAMES[algorithm]);
    const hash = hasher.getWriter();
    let serving = true;
    const both = (block: Uint8Array): Promise<unknown> =>
      Promise.all([
        store.write(block.slice()),
        serving ? serve.write(block).catch(() => (serving = false)) : undefined,
      ]);
    const pump = async (): Promise<void> => {
      const source = new BlockSource(body);
      let head: Uint8Array = new Uint8Array(0);
      let held: Uint8Array | undefined;
      let left = length;
      try {
        while (left > 0) {
          const block = await source.read(Math.min(BLOCK_BYTES, left));
          if (!block) throw new Error("the upstream's body ended early");
          left -= block.byteLength;
          head = headOf(head, block);
          await hash.write(block);
          if (held) await both(held);
          held = block;
        }
        await hash.close();
        const got = digestFromHash(algorithm, await hasher.digest);
        if (got !== digest) throw new Error(`the upstream's bytes hash to ${got}, not ${digest}`);
        if (held) await both(held);
        await store.close();
        if (serving) await serve.close().catch(() => undefined);
        await put;
        await this.commitOwn(repo, { digest, size: length, compression: sniffCompression(head), loc, pieces: 1 });
      } catch (e) {
        console.error(`blob ${digest} from upstream not stored: ${e instanceof Error ? e.message : String(e)}`);
        await Promise.all([serve.abort(e).catch(() => undefined), store.abort(e).catch(() => undefined)]);
        await source.cancel(e);
        await put.catch(() => undefined);
        await this.bucket.delete(loc).catch(() => undefined);
      }
    };
    later(pump());
    return client.readable as ReadableStream<Uint8Array>;
  }

  /**
   * Commits a verified copy; if the commit fails, the copy is deleted so that nothing is left
   * behind, unless the record or the link names it: a write whose answer was lost may have
   * happened, and the bytes it names must stay (I2). When that cannot be read either, the copy
   * stays too: named by nothing, the collector frees it after the grace period.
   */
  async commitOwn(repo: string, own: BlobInfo): Promise<BlobInfo> {
    try {
      return (await this.commit(repo, own.digest, own))!;
    } catch (e) {
      if (!(await this.mayBeNamed(repo, own).catch(() => true))) await this.discard(own).catch(() => undefined);
      throw e;
    }
  }

  /** Whether the blob's record or the repository's link names the copy. */
  private async mayBeNamed(repo: string, copy: BlobInfo): Promise<boolean> {
    const [record, link] = await Promise.all([
      this.bucket.head(keys.blob(copy.digest)),
      this.bucket.head(keys.blobLink(repo, copy.digest)),
    ]);
    return [record, link].some((o) => o?.customMetadata?.loc === copy.loc);
  }

  /** Deletes a copy nothing committed: its one object, or its pieces and then their table. */
  async discard(copy: BlobLocation): Promise<void> {
    if (copy.pieces <= 1) {
      await this.bucket.delete(copy.loc);
      return;
    }
    const id = dataIdOf(copy.loc);
    if (id === undefined) return;
    const pieces: string[] = [];
    for await (const o of listAll(this.bucket, keys.piecesPrefix(id))) if (o.key !== copy.loc) pieces.push(o.key);
    await deleteAll(this.bucket, pieces);
    await this.bucket.delete(copy.loc);
  }
}

/**
 * The pieces' bytes in order, restricted to `range`, as a stream of known length (workerd then
 * sends the Content-Length the route sets rather than chunked encoding). The next piece's GET is
 * sent while the current one streams, so a piece boundary costs no round trip.
 *
 * Each piece's body is piped into a native FixedLengthStream instead of being read chunk by chunk
 * in JavaScript: R2 body to native stream is a pump inside workerd, as fast as serving one object,
 * and it holds only what the client has not taken yet (a JavaScript pull loop served pieces at a
 * tenth of that speed).
 */
export function streamPieces(
  bucket: Bucket,
  pieces: Piece[],
  range: ByteRange | undefined,
  digest: Digest,
): ReadableStream<Uint8Array> {
  const start = range?.offset ?? 0;
  const end = range ? range.offset + range.length : pieces.reduce((n, p) => n + p.size, 0);
  const wanted: { key: string; range: ByteRange; whole: boolean }[] = [];
  let at = 0;
  for (const p of pieces) {
    const from = Math.max(start, at);
    const to = Math.min(end, at + p.size);
    if (to > from)
      wanted.push({ key: p.key, range: { offset: from - at, length: to - from }, whole: to - from === p.size });
    at += p.size;
  }
  const fetchPiece = async (i: number): Promise<ReadableStream<Uint8Array>> => {
    const w = wanted[i]!;
    const obj = await bucket.get(w.key, w.whole ? undefined : { range: w.range });
    if (!obj) throw new RegistryError("BLOB_UNKNOWN", "blob data is missing", { digest });
    return obj.body as ReadableStream<Uint8Array>;
  };
  const out = new FixedLengthStream(end - start);
  const pump = async (): Promise<void> => {
    let next: Promise<ReadableStream<Uint8Array>> | undefined = wanted.length > 0 ? fetchPiece(0) : undefined;
    try {
      for (let i = 0; next; i++) {
        const body = await next;
        next = i + 1 < wanted.length ? fetchPiece(i + 1) : undefined;
        // A prefetch that fails is reported when its turn comes, not as an unhandled rejection.
        next?.catch(() => undefined);
        await body.pipeTo(out.writable, { preventClose: true });
      }
      await out.writable.close();
    } catch (e) {
      // The reader went away, or a piece failed: stop the prefetch too, and fail the stream.
      await next?.then((b) => b.cancel(e)).catch(() => undefined);
      await out.writable.abort(e).catch(() => undefined);
    }
  };
  void pump();
  return out.readable as ReadableStream<Uint8Array>;
}

/**
 * Streams a body of known length into one R2 object while hashing it natively (DigestStream),
 * and learns its compression from its first bytes on the way. With `expect`, the body is hashed
 * with that digest's algorithm and R2 itself refuses a body that does not match (its `sha256` or
 * `sha512` checksum), so it is never written; without it the body is hashed with sha256 and the
 * caller decides what to keep.
 */
export async function putHashed(
  bucket: Bucket,
  key: string,
  body: ReadableStream<Uint8Array>,
  length: number,
  opts: { expect?: Digest } = {},
): Promise<{ digest: Digest; compression: Compression; head: Uint8Array }> {
  const { expect } = opts;
  const algorithm = expect ? algorithmOf(expect) : "sha256";
  const checksum: Pick<R2PutOptions, "sha256" | "sha512"> = !expect
    ? {}
    : algorithm === "sha512"
      ? { sha512: hexOf(expect) }
      : { sha256: hexOf(expect) };
  // Hashed in line, block by block (blocks.ts), rather than through tee(): a tee lets the request
  // run ahead of a slower R2 write and buffers the difference, which for a multi-GB blob would
  // exhaust the isolate. In line, the body is read no faster than R2 takes it.
  const hasher = new crypto.DigestStream(HASH_NAMES[algorithm]);
  const hash = hasher.getWriter();
  const source = new BlockSource(body);
  let head: Uint8Array = new Uint8Array(0);
  let size = 0;
  let putError: unknown;
  try {
    // Counted here rather than from the answer: R2 refusing the checksum throws once all is read.
    await putBlocks(
      bucket,
      key,
      source,
      length,
      async (block) => {
        size += block.byteLength;
        head = headOf(head, block);
        await hash.write(block);
      },
      { ...checksum, httpMetadata: { contentType: "application/octet-stream" } },
    );
  } catch (e) {
    // A body that failed while it was read (a client hanging up) is the client's error.
    if (e instanceof RegistryError) throw e;
    putError = e;
  }
  await hash.close();
  if (putError !== undefined && size !== length) {
    // R2 failed before the whole body was read: the service's fault, not a body of the wrong length.
    await bucket.delete(key).catch(() => undefined);
    throw putError;
  }
  const surplus = putError === undefined && size === length ? await source.rest() : 0;
  if (surplus > 0) await bucket.delete(key);
  if (size + surplus !== length) {
    throw new RegistryError("SIZE_INVALID", "body length does not match Content-Length", {
      expected: length,
      received: size + surplus,
    });
  }
  const digest = digestFromHash(algorithm, await hasher.digest);
  // R2 refusing a body that does not match its checksum is a digest mismatch, which the caller reports.
  if (putError && !(expect && digest !== expect)) {
    // The write may have happened with its answer lost: a copy nothing will name goes now, or with the collector.
    await bucket.delete(key).catch(() => undefined);
    throw putError;
  }
  return { digest, compression: sniffCompression(head), head };
}
