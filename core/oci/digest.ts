/**
 * Content digests. Only sha256 is stored (the spec's required algorithm); a well-formed digest of
 * another algorithm is refused with a reason that says so, rather than as malformed.
 */
import { RegistryError } from "./errors.ts";

export const SHA256_HEX_RE = /^[a-f0-9]{64}$/;
/** The spec's digest grammar: algorithm ":" encoded. */
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export type Digest = `sha256:${string}`;

export function isSha256Digest(s: string): s is Digest {
  return s.startsWith("sha256:") && SHA256_HEX_RE.test(s.slice(7));
}

/**
 * Validates a digest from a client. Anything that is not a well-formed sha256 digest is a
 * DIGEST_INVALID (400), a digest of another algorithm too: the spec answers a digest the registry
 * cannot verify on upload with DIGEST_INVALID, and 415 is about request bodies, not digests.
 */
export function parseDigest(s: string | null | undefined): Digest {
  if (s && isSha256Digest(s)) return s;
  if (s && DIGEST_GRAMMAR.test(s) && !s.startsWith("sha256:")) {
    throw new RegistryError("DIGEST_INVALID", "unsupported digest algorithm", {
      digest: s.slice(0, 200),
      supported: ["sha256"],
    });
  }
  // Echo a bounded prefix: a URL may carry kilobytes of junk where a digest belongs.
  throw new RegistryError("DIGEST_INVALID", "invalid digest", { digest: s?.slice(0, 200) ?? null });
}

export function hexOf(d: Digest): string {
  return d.slice(7);
}

export function toHex(buf: ArrayBuffer | Uint8Array): string {
  const bytes = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** sha256 of an in-memory value (manifests, configs, fields): WebCrypto, so it runs in both runtimes. */
export async function sha256(data: Uint8Array | string): Promise<Digest> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const hash = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return `sha256:${toHex(hash)}`;
}
