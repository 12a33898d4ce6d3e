/**
 * Getting one blob into a repository, by the cheapest route the registry allows:
 *   1. a cross-repository mount (`POST ?mount=&from=`; 201 means done, 202 opens a session),
 *      from each repository that may hold the blob in turn, and then, where asked, a mount by
 *      digest alone (`POST ?mount=` without `from`), which a registry may answer from any
 *      repository the caller may read (distribution ignores it and opens a session). The session
 *      of the last refused mount carries the upload, so trying costs one request, never a
 *      second session;
 *   2. small blobs monolithically: `POST ?digest=` with the body. Registries that ignore such a
 *      body (distribution 2.8 answers 202 and opens a session) get the body again by
 *      `PUT <Location>?digest=`, and from then on every small blob goes POST, then PUT;
 *   3. large blobs in chunks: POST, PATCH with Content-Range and Content-Length per chunk, PUT
 *      `?digest=`. Chunks are cut at multiples of the chunk size from byte 0, so a resumed
 *      upload keeps every chunk but the last the same size (what R2 multipart parts need).
 *      After every chunk the session is saved; a failed chunk asks the registry how far it got
 *      (GET Location, `Range: 0-<last>`) and goes on from there, in this run or the next.
 */
import { repositoryScope } from "./auth.ts";
import type { BlobSource } from "./image.ts";
import type { PushEventHandler } from "./events.ts";
import { RegistryHttpError, type Transport } from "./http.ts";
import { backoffDelay, isTransient, SourceError, sleep, withRetry, type RetryPolicy } from "./retry.ts";
import { ChunkReader } from "./streams.ts";
import type { UploadStateStore } from "./upload-state.ts";

export interface UploadOptions {
  /** Largest chunk to PATCH; the registry's OCI-Chunk-Max-Length lowers it. */
  chunkSize: number;
  /** Blobs up to this size go up in one request. */
  monolithicMax: number;
  retry: RetryPolicy;
}

/** 95 MB: under the 100 MB request body limit of Cloudflare's Free and Pro plans. */
export const DEFAULT_CHUNK_SIZE = 95_000_000;
export const DEFAULT_MONOLITHIC_MAX = 8 * 1024 * 1024;

/** `from` is absent for a mount by digest alone: the registry does not say where it found the blob. */
export type UploadOutcome = { kind: "mounted"; from?: string } | { kind: "uploaded"; bytesSent: number };

export interface MountPlan {
  /** Repositories of this registry that may hold the blob, tried in order. */
  from?: readonly string[];
  /** Then try a mount without `from`. */
  anywhere?: boolean;
  /** A mount was refused (202); `from` is undefined for the mount by digest alone. */
  onRefused?: (from: string | undefined) => void;
}

type OnRetry = (error: unknown, failures: number, delayMs: number) => void;

interface Session {
  location: string;
  chunkMax?: number;
  chunkMin?: number;
}

const OCTET = "application/octet-stream";

export class BlobUploader {
  readonly #t: Transport;
  readonly #registry: string;
  readonly #state: UploadStateStore;
  readonly #opts: UploadOptions;
  readonly #emit: PushEventHandler;
  /** Whether `POST ?digest=` with a body completes an upload here; unknown until first tried. */
  #singlePost: boolean | undefined;
  /** Settles when the upload finding out #singlePost has its answer (or failed). */
  #probe: Promise<void> | undefined;

  constructor(t: Transport, registry: string, state: UploadStateStore, opts: UploadOptions, emit: PushEventHandler) {
    this.#t = t;
    this.#registry = registry;
    this.#state = state;
    this.#opts = opts;
    this.#emit = emit;
  }

  /**
   * Mounts are tried first, as `mounts` plans them. A refused mount (202) tells `onRefused`; its
   * session is cancelled while another mount remains to try, and the last one's carries the upload.
   */
  async upload(
    repo: string,
    blob: BlobSource,
    scopes: readonly string[],
    mounts: MountPlan = {},
  ): Promise<UploadOutcome> {
    const onRetry = (e: unknown, failures: number, delayMs: number): void => this.#retrying(blob, e, failures, delayMs);
    const saved = blob.size > this.#opts.monolithicMax ? await this.#resumable(repo, blob, scopes, onRetry) : undefined;
    let session: Session | undefined;
    const candidates: (string | undefined)[] = saved
      ? []
      : [...(mounts.from ?? []).filter((r) => r !== repo), ...(mounts.anywhere ? [undefined] : [])];
    for (const [i, from] of candidates.entries()) {
      let mount: "mounted" | Session;
      try {
        const mountScopes = from === undefined ? scopes : [...scopes, repositoryScope(from, "pull")];
        mount = await this.#mount(repo, blob.digest, from, mountScopes, onRetry);
      } catch {
        // A candidate is a hint (a repository since deleted, or one these credentials may not
        // read): if mounting fails, uploading is what would have happened without it.
        mounts.onRefused?.(from);
        continue;
      }
      if (mount === "mounted") {
        this.#emit({ type: "blob-mounted", digest: blob.digest, size: blob.size, ...(from ? { from } : {}) });
        return from ? { kind: "mounted", from } : { kind: "mounted" };
      }
      mounts.onRefused?.(from);
      if (i < candidates.length - 1) await this.#cancel(mount.location, scopes);
      else session = mount;
    }
    const started = performance.now();
    let sent = 0;
    let position = saved?.offset ?? 0;
    const onBytes = (n: number): void => {
      sent += n;
      position += n;
      this.#emit({ type: "blob-progress", digest: blob.digest, offset: position, size: blob.size });
    };
    const restartAt = (offset: number): void => {
      position = offset;
    };
    this.#emit({
      type: "blob-start",
      digest: blob.digest,
      size: blob.size,
      mediaType: blob.mediaType,
      offset: position,
    });
    if (blob.size <= this.#opts.monolithicMax) {
      await this.#monolithic(repo, blob, scopes, session, onBytes, restartAt, onRetry);
    } else {
      await this.#chunked(repo, blob, scopes, saved ?? session, onBytes, restartAt, onRetry);
    }
    const seconds = (performance.now() - started) / 1000;
    this.#emit({ type: "blob-done", digest: blob.digest, size: blob.size, bytesSent: sent, seconds });
    return { kind: "uploaded", bytesSent: sent };
  }

  /** A saved session the registry still holds, with its committed offset. */
  async #resumable(
    repo: string,
    blob: BlobSource,
    scopes: readonly string[],
    onRetry: OnRetry,
  ): Promise<(Session & { offset: number; chunkSize: number }) | undefined> {
    const saved = await this.#state.load(this.#registry, repo, blob.digest);
    if (!saved) return undefined;
    const status = await this.#status(saved.location, scopes, onRetry);
    if (!status || status.offset > blob.size) {
      await this.#state.delete(this.#registry, repo, blob.digest);
      return undefined;
    }
    return { location: status.location, offset: status.offset, chunkSize: saved.chunkSize };
  }

  async #mount(
    repo: string,
    digest: string,
    from: string | undefined,
    scopes: readonly string[],
    onRetry: OnRetry,
  ): Promise<"mounted" | Session> {
    const source = from === undefined ? "" : `&from=${encodeURIComponent(from)}`;
    const url = `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}${source}`;
    const res = await this.#t.request({ method: "POST", url, scopes, expect: [201, 202] }, onRetry);
    await res.body?.cancel();
    return res.status === 201 ? "mounted" : this.#session(res);
  }

  /** Cancels an upload session nobody will use; the registry would expire it anyway, so failures are ignored. */
  async #cancel(location: string, scopes: readonly string[]): Promise<void> {
    try {
      const res = await this.#t.send({ method: "DELETE", url: location, scopes, expect: [204, 202, 200, 404] });
      await res.body?.cancel();
    } catch {
      // Best effort: an abandoned session costs the registry nothing lasting.
    }
  }

  async #openSession(repo: string, scopes: readonly string[], onRetry: OnRetry): Promise<Session> {
    const url = `/v2/${repo}/blobs/uploads/`;
    const res = await this.#t.request({ method: "POST", url, scopes, expect: [202] }, onRetry);
    await res.body?.cancel();
    return this.#session(res);
  }

  #session(res: Response): Session {
    const location = res.headers.get("location");
    if (!location) throw new RegistryHttpError("upload session without a Location", res.status, undefined);
    const s: Session = { location: this.#t.resolve(location) };
    const max = Number(res.headers.get("oci-chunk-max-length"));
    const min = Number(res.headers.get("oci-chunk-min-length"));
    if (Number.isSafeInteger(max) && max > 0) s.chunkMax = max;
    if (Number.isSafeInteger(min) && min > 0) s.chunkMin = min;
    return s;
  }

  /** How far an upload session got, or undefined when the registry no longer has it. */
  async #status(
    location: string,
    scopes: readonly string[],
    onRetry: OnRetry,
  ): Promise<{ location: string; offset: number } | undefined> {
    let res: Response;
    try {
      res = await this.#t.request({ method: "GET", url: location, scopes, expect: [204, 200] }, onRetry);
    } catch (e) {
      // 404: expired or finished; 400: distribution cancels a session whose stored size
      // disagrees with the offset signed into its Location (a chunk died half-way).
      if (e instanceof RegistryHttpError && (e.status === 404 || e.status === 400)) return undefined;
      throw e;
    }
    await res.body?.cancel();
    const next = this.#t.resolve(res.headers.get("location") ?? location);
    return { location: next, offset: committedOffset(res.headers.get("range")) };
  }

  async #monolithic(
    repo: string,
    blob: BlobSource,
    scopes: readonly string[],
    session: Session | undefined,
    onBytes: (n: number) => void,
    restartAt: (offset: number) => void,
    onRetry: OnRetry,
  ): Promise<void> {
    const headers = { "Content-Type": OCTET, "Content-Length": String(blob.size) };
    await withRetry(
      this.#opts.retry,
      async () => {
        restartAt(0);
        // A session is used once: after a failed PUT the registry may have dropped it.
        let location = session?.location;
        session = undefined;
        // One upload finds out whether a POST body counts here; the others wait for the answer
        // rather than each sending its body twice to a registry that ignores the first.
        if (!location && this.#singlePost === undefined && this.#probe) await this.#probe;
        if (!location && this.#singlePost !== false) {
          let probed: () => void = () => {};
          if (this.#singlePost === undefined) this.#probe = new Promise<void>((r) => (probed = r));
          try {
            const url = `/v2/${repo}/blobs/uploads/?digest=${encodeURIComponent(blob.digest)}`;
            const res = await this.#sendBlob(
              { method: "POST", url, scopes, headers, expect: [201, 202] },
              blob,
              onBytes,
            );
            if (res.status === 201) {
              this.#singlePost = true;
              return checkDigest(res, blob.digest);
            }
            this.#singlePost = false;
            restartAt(0);
            location = this.#session(res).location;
          } finally {
            probed();
          }
        }
        location ??= (await this.#openSession(repo, scopes, onRetry)).location;
        const url = withDigest(location, blob.digest);
        const res = await this.#sendBlob({ method: "PUT", url, scopes, headers, expect: [201] }, blob, onBytes);
        checkDigest(res, blob.digest);
      },
      onRetry,
    );
  }

  /** Sends the whole blob as the body of one request. */
  async #sendBlob(
    req: {
      method: "POST" | "PUT";
      url: string;
      scopes: readonly string[];
      headers: Record<string, string>;
      expect: number[];
    },
    blob: BlobSource,
    onBytes: (n: number) => void,
  ): Promise<Response> {
    const reader = await openReader(blob, 0);
    try {
      const res = await this.#t.send({ ...req, body: reader.take(blob.size, onBytes) });
      await res.body?.cancel();
      return res;
    } finally {
      await reader.cancel();
    }
  }

  async #chunked(
    repo: string,
    blob: BlobSource,
    scopes: readonly string[],
    start: (Session & { offset?: number; chunkSize?: number }) | undefined,
    onBytes: (n: number) => void,
    restartAt: (offset: number) => void,
    onRetry: OnRetry,
  ): Promise<void> {
    let session = start ?? (await this.#openSession(repo, scopes, onRetry));
    let location = session.location;
    let offset = start?.offset ?? 0;
    const chunkSize = start?.chunkSize ?? this.#chunkSizeFor(session);
    const save = (): Promise<void> =>
      this.#state.save({
        registry: this.#registry,
        repository: repo,
        digest: blob.digest,
        location,
        offset,
        chunkSize,
      });

    for (let failures = 0; ;) {
      let reader: ChunkReader | undefined;
      try {
        restartAt(offset);
        reader = await openReader(blob, offset);
        while (offset < blob.size) {
          const end = Math.min(blob.size, (Math.floor(offset / chunkSize) + 1) * chunkSize);
          const res = await this.#t.send({
            method: "PATCH",
            url: location,
            scopes,
            headers: {
              "Content-Type": OCTET,
              "Content-Range": `${offset}-${end - 1}`,
              "Content-Length": String(end - offset),
            },
            body: reader.take(end - offset, onBytes),
            expect: [202, 204],
          });
          await res.body?.cancel();
          location = this.#t.resolve(res.headers.get("location") ?? location);
          offset = end;
          failures = 0;
          await save();
        }
        await reader.expectEnd();
        const url = withDigest(location, blob.digest);
        const res = await this.#t.send({
          method: "PUT",
          url,
          scopes,
          headers: { "Content-Length": "0" },
          expect: [201],
        });
        await res.body?.cancel();
        checkDigest(res, blob.digest);
        await this.#state.delete(this.#registry, repo, blob.digest);
        return;
      } catch (e) {
        await reader?.cancel();
        failures++;
        if (!isTransient(e) || failures >= this.#opts.retry.attempts) throw e;
        const delayMs = backoffDelay(this.#opts.retry, failures, (e as { retryAfterMs?: number }).retryAfterMs);
        onRetry(e, failures, delayMs);
        await sleep(delayMs);
        const status = await this.#status(location, scopes, onRetry);
        if (status && status.offset <= blob.size) {
          ({ location, offset } = status);
        } else {
          session = await this.#openSession(repo, scopes, onRetry);
          ({ location } = session);
          offset = 0;
        }
      }
    }
  }

  #chunkSizeFor(s: Session): number {
    const max = s.chunkMax ? Math.min(s.chunkMax, this.#opts.chunkSize) : this.#opts.chunkSize;
    return Math.max(max, s.chunkMin ?? 0);
  }

  #retrying(blob: BlobSource, e: unknown, failures: number, delayMs: number): void {
    const error =
      e instanceof Error ? (e.cause instanceof Error ? `${e.message}: ${e.cause.message}` : e.message) : String(e);
    this.#emit({ type: "blob-retry", digest: blob.digest, failures, delayMs: Math.round(delayMs), error });
  }
}

async function openReader(blob: BlobSource, offset: number): Promise<ChunkReader> {
  const what = `blob ${blob.digest}`;
  let stream: ReadableStream<Uint8Array>;
  try {
    stream = offset > 0 && blob.openAt ? await blob.openAt(offset) : await blob.open();
  } catch (e) {
    throw new SourceError(`opening ${what} failed: ${(e as Error).message ?? String(e)}`, e);
  }
  const reader = new ChunkReader(stream, what);
  if (offset > 0 && !blob.openAt) await reader.skip(offset);
  return reader;
}

/** Appends `digest=` to an upload Location, keeping its own query (distribution's `_state`). */
export function withDigest(location: string, digest: string): string {
  return `${location}${location.includes("?") ? "&" : "?"}digest=${encodeURIComponent(digest)}`;
}

/**
 * The committed length from an upload status `Range: 0-<last>` (some registries prefix `bytes=`).
 * distribution answers `0-0` for an empty session too; with chunks of megabytes, a one-byte
 * commit cannot happen, so `0-0` is read as nothing committed.
 */
export function committedOffset(range: string | null): number {
  const m = /^(?:bytes=)?0-(\d+)$/.exec(range?.trim() ?? "");
  if (!m) return 0;
  const last = Number(m[1]);
  return last === 0 ? 0 : last + 1;
}

function checkDigest(res: Response, digest: string): void {
  const got = res.headers.get("docker-content-digest");
  if (got && got !== digest) {
    throw new RegistryHttpError(`the registry stored ${digest} as ${got}`, res.status, undefined, { transient: false });
  }
}
