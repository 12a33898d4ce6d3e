/**
 * Compact JWS with HS256 (HMAC-SHA256), the form Docker registry tokens take. Only HS256 is
 * accepted: a header naming any other algorithm (`none` included) fails, so the token cannot
 * choose how it is checked. WebCrypto's verify compares the MAC in constant time.
 */
import { fromBase64Url, toBase64Url } from "../../core/encoding/base64.ts";

const HEADER = toBase64Url(new TextEncoder().encode(JSON.stringify({ alg: "HS256", typ: "JWT" })));

export async function signJwt(key: CryptoKey, claims: Record<string, unknown>): Promise<string> {
  const payload = toBase64Url(new TextEncoder().encode(JSON.stringify(claims)));
  const input = `${HEADER}.${payload}`;
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(input));
  return `${input}.${toBase64Url(new Uint8Array(mac))}`;
}

/** The claims of a token whose signature is ours, or undefined. Claims are not checked here. */
export async function verifyJwt(key: CryptoKey, token: string): Promise<unknown> {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  const [header = "", payload = "", signature = ""] = parts;
  const mac = fromBase64Url(signature);
  if (!mac) return undefined;
  const ok = await crypto.subtle.verify("HMAC", key, mac, new TextEncoder().encode(`${header}.${payload}`));
  if (!ok) return undefined;
  const alg = (decodeJson(header) as { alg?: unknown } | undefined)?.alg;
  return alg === "HS256" ? decodeJson(payload) : undefined;
}

function decodeJson(segment: string): unknown {
  const bytes = fromBase64Url(segment);
  if (!bytes) return undefined;
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    return undefined;
  }
}
