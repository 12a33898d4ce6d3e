/**
 * Password hashes: PBKDF2-HMAC-SHA256 through WebCrypto, stored as
 * `pbkdf2-sha256$<iterations>$<salt, base64>$<32-byte hash, base64>`.
 * Pure WebCrypto, so scripts/hash-password.ts runs the same code under Node.
 */
import { fromBase64, toBase64 } from "../../core/encoding/base64.ts";

/** workerd refuses PBKDF2 with more iterations than this (a Workers platform limit). */
export const PBKDF2_MAX_ITERATIONS = 100_000;
export const HASH_BYTES = 32;
const SALT_BYTES = 16;
const PREFIX = "pbkdf2-sha256";

export interface PasswordHash {
  iterations: number;
  salt: Uint8Array;
  hash: Uint8Array;
}

/** Why a stored hash is unusable, or the parsed hash. */
export function parsePasswordHash(text: string): PasswordHash | string {
  const parts = text.split("$");
  if (parts.length !== 4 || parts[0] !== PREFIX) return `must look like ${PREFIX}$<iterations>$<salt>$<hash>`;
  const [, iter = "", saltB64 = "", hashB64 = ""] = parts;
  const iterations = /^[1-9]\d{0,6}$/.test(iter) ? Number(iter) : NaN;
  if (!(iterations <= PBKDF2_MAX_ITERATIONS))
    return `iterations must be 1..${PBKDF2_MAX_ITERATIONS} (the Workers limit)`;
  const salt = fromBase64(saltB64);
  if (!salt || salt.byteLength < 8) return "salt must be base64 of at least 8 bytes";
  const hash = fromBase64(hashB64);
  if (!hash || hash.byteLength !== HASH_BYTES) return `hash must be base64 of ${HASH_BYTES} bytes`;
  return { iterations, salt, hash };
}

export async function hashPassword(password: string, iterations = PBKDF2_MAX_ITERATIONS): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const hash = await derive(password, salt, iterations);
  return `${PREFIX}$${iterations}$${toBase64(salt)}$${toBase64(hash)}`;
}

export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  return constantTimeEqual(await derive(password, stored.salt, stored.iterations), stored.hash);
}

/** Compares without an early exit, so the time taken says nothing about where the inputs differ. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.byteLength ^ b.byteLength;
  for (let i = 0; i < a.byteLength; i++) diff |= a[i]! ^ (b[i % Math.max(1, b.byteLength)] ?? 0);
  return diff === 0;
}

async function derive(password: string, salt: Uint8Array, iterations: number): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(password), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    key,
    HASH_BYTES * 8,
  );
  return new Uint8Array(bits);
}
