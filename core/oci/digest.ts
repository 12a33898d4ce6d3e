/**
 * Content digests. The registry stores and verifies the two algorithms the OCI image spec
 * registers, sha256 (the one every client uses) and sha512; a well-formed digest of another
 * algorithm is refused with a reason that says so, rather than as malformed.
 */
import { RegistryError } from "./errors.ts";

export const SHA256_HEX_RE = /^[a-f0-9]{64}$/;
/** The spec's digest grammar: algorithm ":" encoded. */
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** The algorithms the registry verifies, with the lowercase hex each one is encoded as. */
const ENCODED = { sha256: SHA256_HEX_RE, sha512: /^[a-f0-9]{128}$/ } as const;
export type DigestAlgorithm = keyof typeof ENCODED;
export const DIGEST_ALGORITHMS = Object.keys(ENCODED) as DigestAlgorithm[];

/** Each algorithm's name for WebCrypto and workerd's DigestStream. */
export const HASH_NAMES: Record<DigestAlgorithm, "SHA-256" | "SHA-512"> = { sha256: "SHA-256", sha512: "SHA-512" };

export type Sha256Digest = `sha256:${string}`;
export type Digest = Sha256Digest | `sha512:${string}`;

export function isDigest(s: string): s is Digest {
  const colon = s.indexOf(":");
  if (colon < 0) return false;
  const alg = s.slice(0, colon);
  return Object.hasOwn(ENCODED, alg) && ENCODED[alg as DigestAlgorithm].test(s.slice(colon + 1));
}

export function isSha256Digest(s: string): s is Sha256Digest {
  return s.startsWith("sha256:") && SHA256_HEX_RE.test(s.slice(7));
}

/**
 * Validates a digest from a client. Anything that is not a well-formed sha256 or sha512 digest is
 * a DIGEST_INVALID (400), a digest of another algorithm too: the spec answers a digest the registry
 * cannot verify on upload with DIGEST_INVALID, and 415 is about request bodies, not digests.
 */
export function parseDigest(s: string | null | undefined): Digest {
  if (s && isDigest(s)) return s;
  if (s && DIGEST_GRAMMAR.test(s) && !Object.hasOwn(ENCODED, s.slice(0, s.indexOf(":")))) {
    throw new RegistryError("DIGEST_INVALID", "unsupported digest algorithm", {
      digest: s.slice(0, 200),
      supported: DIGEST_ALGORITHMS,
    });
  }
  // Echo a bounded prefix: a URL may carry kilobytes of junk where a digest belongs.
  throw new RegistryError("DIGEST_INVALID", "invalid digest", { digest: s?.slice(0, 200) ?? null });
}

export function algorithmOf(d: Digest): DigestAlgorithm {
  return d.startsWith("sha512:") ? "sha512" : "sha256";
}

export function hexOf(d: Digest): string {
  return d.slice(d.indexOf(":") + 1);
}

export function toHex(buf: ArrayBuffer | Uint8Array): string {
  const bytes = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** The digest of a finished hash: `<algorithm>:<hex>`. */
export function digestFromHash(algorithm: DigestAlgorithm, hash: ArrayBuffer | Uint8Array): Digest {
  return `${algorithm}:${toHex(hash)}`;
}

/** The digest of an in-memory value with the given algorithm: WebCrypto, so it runs in both runtimes. */
export async function digestWith(algorithm: DigestAlgorithm, data: Uint8Array | string): Promise<Digest> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  return digestFromHash(algorithm, await crypto.subtle.digest(HASH_NAMES[algorithm], bytes as Uint8Array<ArrayBuffer>));
}

/** sha256 of an in-memory value (manifests, configs, fields): what clients expect of content the registry names. */
export async function sha256(data: Uint8Array | string): Promise<Sha256Digest> {
  return (await digestWith("sha256", data)) as Sha256Digest;
}
