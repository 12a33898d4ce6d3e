/**
 * What the auth tests share: the Worker called with auth settings of the test's choosing (the
 * real app, bindings and storage, with AUTH_MODE/AUTH_CONFIG set per call), tokens fetched the way
 * clients fetch them, and an HS256 signer written from RFC 7515 to forge tokens the registry must
 * refuse.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { createApp } from "../../worker/app.ts";
import { hashPassword } from "../../worker/auth/password.ts";
import { ORIGIN } from "./helpers/registry.ts";

const app = createApp();

/** Few PBKDF2 iterations keep the suite fast; production hashes use 100,000. */
const TEST_ITERATIONS = 1_000;

export type Call = (pathOrUrl: string, init?: RequestInit) => Promise<Response>;

/**
 * The Worker with extra vars (AUTH_MODE, AUTH_CONFIG, ...) or bindings on top of the test
 * bindings; a key set to undefined takes that binding away.
 */
export function workerWith(vars: Partial<Cloudflare.Env>): Call {
  return async (pathOrUrl, init) => {
    const ctx = createExecutionContext();
    const res = await app.fetch(new Request(new URL(pathOrUrl, ORIGIN), init), { ...env, ...vars }, ctx);
    await waitOnExecutionContext(ctx);
    return res;
  };
}

export async function usersWithPasswords(
  passwords: Record<string, string>,
): Promise<Record<string, { password: string }>> {
  const entries = await Promise.all(
    Object.entries(passwords).map(
      async ([user, pw]) => [user, { password: await hashPassword(pw, TEST_ITERATIONS) }] as const,
    ),
  );
  return Object.fromEntries(entries);
}

export function basic(user: string, password: string): string {
  return `Basic ${btoa(`${user}:${password}`)}`;
}

export interface TokenAnswer {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
  scope?: string;
}

/** GET /token as docker and skopeo ask for it: repeated `scope=`, Basic credentials or none. */
export async function fetchToken(call: Call, scopes: string[], authorization?: string): Promise<TokenAnswer> {
  const query = new URLSearchParams([
    ["service", "registry.test"],
    ...scopes.map((s) => ["scope", s] as [string, string]),
  ]);
  const res = await call(`/token?${query}`, authorization ? { headers: { Authorization: authorization } } : undefined);
  if (res.status !== 200) throw new Error(`GET /token answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as TokenAnswer;
}

export function bearer(token: string): string {
  return `Bearer ${token}`;
}

/** The claims of a JWT, read without checking it. */
export function claimsOf(token: string): Record<string, unknown> {
  const payload = token.split(".")[1] ?? "";
  return JSON.parse(new TextDecoder().decode(fromB64Url(payload))) as Record<string, unknown>;
}

/** A compact JWS over `claims` with HS256 and `key`: what a forger holding the key could make. */
export async function signHs256(claims: Record<string, unknown>, key: string): Promise<string> {
  const enc = (v: unknown) => toB64Url(new TextEncoder().encode(JSON.stringify(v)));
  const input = `${enc({ alg: "HS256", typ: "JWT" })}.${enc(claims)}`;
  const k = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", k, new TextEncoder().encode(input)));
  return `${input}.${toB64Url(mac)}`;
}

export function toB64Url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

function fromB64Url(text: string): Uint8Array {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

/** The parameters of a `WWW-Authenticate: Bearer k="v",...` challenge. */
export function challengeOf(res: Response): Record<string, string> | undefined {
  const h = res.headers.get("WWW-Authenticate");
  if (!h?.startsWith("Bearer ")) return undefined;
  return Object.fromEntries([...h.slice(7).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
}

/** The first OCI error code of an answer, or undefined when the body is not OCI error JSON. */
export async function errorCodeOf(res: Response): Promise<string | undefined> {
  try {
    const body = (await res.clone().json()) as { errors?: { code?: string }[] };
    return body.errors?.[0]?.code;
  } catch {
    return undefined;
  }
}
