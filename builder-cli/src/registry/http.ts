/**
 * One registry's HTTP: URLs resolved against its base (upload Locations may be relative or
 * absolute), the Authorization header for each request's scope, one re-authentication on 401,
 * and answers outside the expected statuses turned into a RegistryHttpError that shows the OCI
 * error code and message the registry sent.
 */
import { parseErrorBody } from "../../../core/oci/errors.ts";
import { AuthError, CREDENTIALS_NEEDED, type Authenticator } from "./auth.ts";
import { networkError } from "./network-error.ts";
import { isTransientStatus, SourceError, withRetry, type RetryPolicy } from "./retry.ts";

export interface HttpRequest {
  method: "GET" | "HEAD" | "POST" | "PATCH" | "PUT" | "DELETE";
  /** A path (`/v2/...`) or an absolute URL, e.g. an upload Location. */
  url: string;
  /** Token scopes the request needs, e.g. `repository:x/y:pull,push`. */
  scopes: readonly string[];
  headers?: Record<string, string>;
  /** Bytes can be sent again after a 401; a stream cannot, so its 401 becomes a transient error. */
  body?: Uint8Array | ReadableStream<Uint8Array>;
  /** Statuses that count as success; anything else throws. */
  expect: readonly number[];
}

export class RegistryHttpError extends Error {
  readonly status: number;
  /** The first OCI error code in the body, e.g. MANIFEST_INVALID. */
  readonly code: string | undefined;
  readonly transient: boolean;
  readonly retryAfterMs: number | undefined;

  constructor(
    what: string,
    status: number,
    errors: { code: string; message: string; detail?: unknown }[] | undefined,
    opts: { transient?: boolean; retryAfterMs?: number } = {},
  ) {
    const shown = errors?.length
      ? errors.map((e) => `${e.code}: ${e.message}${e.detail !== undefined ? ` (${briefDetail(e.detail)})` : ""}`)
      : [];
    super(`${what}: HTTP ${status}${shown.length ? ` ${shown.join("; ")}` : ""}`);
    this.name = "RegistryHttpError";
    this.status = status;
    this.code = errors?.[0]?.code;
    this.transient = opts.transient ?? isTransientStatus(status);
    this.retryAfterMs = opts.retryAfterMs;
  }
}

export class Transport {
  readonly baseUrl: string;
  readonly #auth: Authenticator;
  readonly #retry: RetryPolicy;
  /** Whether the registry has answered once: after that a refused connection is worth retrying. */
  #answered = false;

  constructor(baseUrl: string, auth: Authenticator, retry: RetryPolicy) {
    this.baseUrl = baseUrl;
    this.#auth = auth;
    this.#retry = retry;
  }

  resolve(url: string): string {
    return new URL(url, this.baseUrl).href;
  }

  /** send() retried on transient failures; for requests whose body (if any) is bytes. */
  request(
    req: HttpRequest & { body?: Uint8Array },
    onRetry?: (error: unknown, failures: number, delayMs: number) => void,
  ): Promise<Response> {
    return withRetry(this.#retry, () => this.send(req), onRetry);
  }

  /** One attempt, plus one more after a 401 if the body can be sent again. */
  async send(req: HttpRequest): Promise<Response> {
    const first = await this.#fetch(req);
    let res = first.res;
    if (res.status === 401) {
      await res.body?.cancel();
      const retry = this.#auth.onUnauthorized(res.headers.get("www-authenticate"), req.scopes, first.authorization);
      if (!retry) throw await this.#error(req, res);
      if (req.body instanceof ReadableStream) {
        // The stream is spent; the caller's retry opens a new one, now with credentials.
        throw new RegistryHttpError(this.#what(req), 401, undefined, { transient: true });
      }
      res = (await this.#fetch(req)).res;
    }
    if (!req.expect.includes(res.status)) throw await this.#error(req, res);
    return res;
  }

  async #fetch(req: HttpRequest): Promise<{ res: Response; authorization: string | undefined }> {
    const headers: Record<string, string> = { ...req.headers };
    const authorization = await this.#auth.header(req.scopes);
    if (authorization) headers.Authorization = authorization;
    const init: RequestInit & { duplex?: "half" } = { method: req.method, headers };
    if (req.body !== undefined) {
      init.body = req.body;
      if (req.body instanceof ReadableStream) init.duplex = "half";
    }
    const url = this.resolve(req.url);
    try {
      const res = await fetch(url, init);
      this.#answered = true;
      return { res, authorization };
    } catch (e) {
      // fetch reports a failing body stream as a network error; it is the source's failure.
      if (e instanceof TypeError && e.cause instanceof SourceError) throw e.cause;
      throw networkError(e, url, this.#answered) ?? e;
    }
  }

  async #error(req: HttpRequest, res: Response): Promise<Error> {
    const text = req.method === "HEAD" ? "" : await res.text().catch(() => "");
    if (res.status === 401) {
      // An anonymous token (the token flow hands one out without credentials) was not enough.
      const why = this.#auth.hasCredentials ? "the registry refused the credentials" : CREDENTIALS_NEEDED;
      return new AuthError(`${this.#what(req)}: HTTP 401, ${why}`);
    }
    const retryAfter = parseRetryAfter(res.headers.get("retry-after"));
    const opts = retryAfter === undefined ? {} : { retryAfterMs: retryAfter };
    return new RegistryHttpError(this.#what(req), res.status, parseErrorBody(text), opts);
  }

  #what(req: HttpRequest): string {
    const u = new URL(this.resolve(req.url));
    // Upload Locations carry opaque state in the query; the path says enough.
    return `${req.method} ${u.pathname}`;
  }
}

function parseRetryAfter(v: string | null): number | undefined {
  if (!v) return undefined;
  const seconds = Number(v);
  if (Number.isFinite(seconds)) return seconds * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function briefDetail(detail: unknown): string {
  const s = typeof detail === "string" ? detail : JSON.stringify(detail);
  return s.length > 300 ? `${s.slice(0, 300)}…` : s;
}
