/**
 * Registry authentication as a client does it, learned from the first 401 the way docker does it.
 * The CLI (builder-cli/src/registry) and the Worker's upstream client (worker/upstream) share it:
 *   - `WWW-Authenticate: Basic ...`: send the credentials with every later request;
 *   - `WWW-Authenticate: Bearer realm=..,service=..`: the Docker token flow. GET
 *     `realm?service=..&scope=repository:<repo>:<actions>` (with the credentials as Basic, if
 *     any; anonymously otherwise), take `token` or `access_token`, and cache it per scope until
 *     it expires. A 401 with a cached token drops it, so the caller re-authenticates once.
 * Credentials and tokens never appear in errors or events.
 */
import { toBase64 } from "../encoding/base64.ts";

export interface AuthOptions {
  username?: string;
  password?: string;
}

export type Challenge =
  | { scheme: "basic"; realm?: string }
  | { scheme: "bearer"; realm: string; service?: string; scope?: string; error?: string };

/** What the Authenticator needs from where it runs. */
export interface AuthenticatorOptions {
  /** The error for a registry that asks for credentials none were given for. */
  credentialsNeeded?: string;
  /** What a failed token request's network error becomes (the CLI names the cause); undefined keeps the default. */
  networkError?: (e: unknown, url: URL) => Error | undefined;
}

export class AuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuthError";
  }
}

/** Parses the first Basic or Bearer challenge of a WWW-Authenticate header. */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const first = challenges(header).find((c) => c.scheme === "basic" || c.scheme === "bearer");
  if (!first) return undefined;
  const { scheme, params } = first;
  if (scheme === "basic") return params.realm !== undefined ? { scheme, realm: params.realm } : { scheme };
  if (!params.realm) return undefined;
  const c: Challenge = { scheme: "bearer", realm: params.realm };
  if (params.service !== undefined) c.service = params.service;
  if (params.scope !== undefined) c.scope = params.scope;
  if (params.error !== undefined) c.error = params.error;
  return c;
}

// RFC 9110 §11.6.1: challenges are `scheme [token68 | param, ...]`, listed with commas; a scheme
// and a parameter's name are tokens, a value is a token or a quoted string (which may hold commas).
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const SCHEME_RE = new RegExp(`[\\s,]*(${TOKEN})`, "y");
const PARAM_RE = new RegExp(`[\\s,]*(${TOKEN})[ \\t]*=[ \\t]*(?:"((?:[^"\\\\]|\\\\.)*)"|([^\\s,"]*))`, "y");
// A token68 stands alone up to the next comma; `name = value` (spaces are allowed around "=") is a parameter.
const TOKEN68_RE = /[ \t]+[A-Za-z0-9._~+/-]+=*(?=\s*(?:,|$))/y;

/**
 * Every challenge of a header, each with its own parameters: a parameter list ends where a token
 * is not followed by "=", which is where the next challenge's scheme begins.
 */
function challenges(header: string): { scheme: string; params: Record<string, string> }[] {
  const out: { scheme: string; params: Record<string, string> }[] = [];
  let at = 0;
  for (;;) {
    SCHEME_RE.lastIndex = at;
    const scheme = SCHEME_RE.exec(header);
    if (!scheme) return out;
    at = SCHEME_RE.lastIndex;
    const params: Record<string, string> = {};
    TOKEN68_RE.lastIndex = at;
    if (TOKEN68_RE.exec(header)) at = TOKEN68_RE.lastIndex;
    for (;;) {
      PARAM_RE.lastIndex = at;
      const p = PARAM_RE.exec(header);
      if (!p) break;
      at = PARAM_RE.lastIndex;
      params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : (p[3] ?? "");
    }
    // Each pass reads at least a scheme, so the scan ends; anything that is neither ends it early.
    out.push({ scheme: scheme[1]!.toLowerCase(), params });
  }
}

/** `repository:<repo>:<actions>`, the scope the token flow grants. */
export function repositoryScope(repo: string, actions: "pull" | "pull,push"): string {
  return `repository:${repo}:${actions}`;
}

interface CachedToken {
  header: string;
  expiresAt: number;
}

/** Docker's token spec: a token without `expires_in` lasts at least 60 s. */
const DEFAULT_TOKEN_SECONDS = 60;
/** Refresh this long before expiry, so a token does not lapse in the middle of a request. */
const EXPIRY_MARGIN_MS = 10_000;

export class Authenticator {
  readonly #creds: AuthOptions;
  readonly #options: AuthenticatorOptions;
  #challenge: Challenge | undefined;
  readonly #tokens = new Map<string, Promise<CachedToken>>();

  constructor(creds: AuthOptions = {}, options: AuthenticatorOptions = {}) {
    this.#creds = creds;
    this.#options = options;
  }

  /** The Authorization header for requests within `scopes`, once the registry has asked for one. */
  async header(scopes: readonly string[]): Promise<string | undefined> {
    const c = this.#challenge;
    if (!c) return undefined;
    if (c.scheme === "basic") return this.#basic();
    const key = scopeKey(scopes);
    let pending = this.#tokens.get(key);
    if (pending) {
      const cached = await pending.catch(() => undefined);
      if (cached && cached.expiresAt > Date.now()) return cached.header;
      if (this.#tokens.get(key) === pending) this.#tokens.delete(key);
      pending = undefined;
    }
    pending = this.#fetchToken(c, scopes);
    this.#tokens.set(key, pending);
    try {
      return (await pending).header;
    } catch (e) {
      this.#tokens.delete(key);
      throw e;
    }
  }

  /**
   * Learns from a 401: records the challenge and forgets the token that was refused. Returns
   * whether sending the request again can succeed: not when it already carried Basic
   * credentials, which would be refused again.
   */
  onUnauthorized(
    wwwAuthenticate: string | null,
    scopes: readonly string[],
    sentAuthorization: string | undefined,
  ): boolean {
    const c = parseChallenge(wwwAuthenticate);
    if (!c) return false;
    this.#challenge = c;
    this.#tokens.delete(scopeKey(scopes));
    if (c.scheme === "basic") {
      if (!this.#hasCreds()) {
        throw new AuthError(this.#options.credentialsNeeded ?? "the registry requires a username and password");
      }
      return !sentAuthorization?.startsWith("Basic ");
    }
    return true;
  }

  /** Whether a username and password were given (else requests go anonymously). */
  get hasCredentials(): boolean {
    return this.#hasCreds();
  }

  #hasCreds(): boolean {
    return this.#creds.username !== undefined && this.#creds.password !== undefined;
  }

  #basic(): string {
    const { username = "", password = "" } = this.#creds;
    return `Basic ${toBase64(new TextEncoder().encode(`${username}:${password}`))}`;
  }

  async #fetchToken(c: Challenge & { scheme: "bearer" }, scopes: readonly string[]): Promise<CachedToken> {
    const url = new URL(c.realm);
    if (c.service !== undefined) url.searchParams.set("service", c.service);
    for (const s of scopes) url.searchParams.append("scope", s);
    const headers: Record<string, string> = { Accept: "application/json" };
    if (this.#hasCreds()) headers.Authorization = this.#basic();
    const started = Date.now();
    let res: Response;
    try {
      res = await fetch(url, { headers });
    } catch (e) {
      throw (
        this.#options.networkError?.(e, url) ??
        new AuthError(`token request to ${url.origin}${url.pathname} failed: ${String(e)}`)
      );
    }
    if (!res.ok) {
      const who = this.#creds.username !== undefined ? ` as "${this.#creds.username}"` : " anonymously";
      await res.body?.cancel();
      throw new AuthError(`token request${who} to ${url.origin}${url.pathname} was refused: HTTP ${res.status}`);
    }
    const body = (await res.json()) as { token?: unknown; access_token?: unknown; expires_in?: unknown };
    const token = typeof body.token === "string" ? body.token : body.access_token;
    if (typeof token !== "string" || token === "") {
      throw new AuthError(`token response from ${url.origin}${url.pathname} has no token`);
    }
    const seconds =
      typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_SECONDS;
    return { header: `Bearer ${token}`, expiresAt: started + seconds * 1000 - EXPIRY_MARGIN_MS };
  }
}

function scopeKey(scopes: readonly string[]): string {
  return [...scopes].sort().join(" ");
}
