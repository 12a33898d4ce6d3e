/**
 * cosign's private key file: a PKCS#8 key sealed with NaCl secretbox (XSalsa20-Poly1305) under a
 * key derived from the passphrase by scrypt, the JSON of that wrapped in a PEM block
 * `ENCRYPTED SIGSTORE PRIVATE KEY` (older cosign wrote `ENCRYPTED COSIGN PRIVATE KEY`):
 *
 *   {"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"<b64>"},
 *    "cipher":{"name":"nacl/secretbox","nonce":"<b64>"},"ciphertext":"<b64>"}
 *
 * The layout is that of go-securesystemslib's `encrypted` package, which cosign uses. scrypt is
 * passed in: the CLI gives node:crypto's native one, the Worker the one its runtime has.
 */
import { tryParseJson } from "../oci/json.ts";
import { secretbox } from "@noble/ciphers/salsa.js";
import { fromBase64, toBase64 } from "../encoding/base64.ts";
import { KeyError } from "./errors.ts";
import { decodePem, encodePem } from "./pem.ts";

export const ENCRYPTED_KEY_PEM = "ENCRYPTED SIGSTORE PRIVATE KEY";
const LEGACY_ENCRYPTED_KEY_PEM = "ENCRYPTED COSIGN PRIVATE KEY";
/** An unencrypted PKCS#8 key, which cosign also imports. */
export const PLAIN_KEY_PEM = "PRIVATE KEY";

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}
export type Scrypt = (
  passphrase: Uint8Array,
  salt: Uint8Array,
  params: ScryptParams,
  length: number,
) => Promise<Uint8Array>;

/** What `cosign generate-key-pair` uses. */
export const COSIGN_SCRYPT: ScryptParams = { N: 32768, r: 8, p: 1 };
/**
 * Bounds on parameters read from a file: enough for any cosign key (they use 2^15 and 2^16), and
 * no more than 256 MiB of scrypt memory (128 * N * r bytes), so a hostile file cannot exhaust it.
 */
const SCRYPT_MAX_MEMORY = 256 * 1024 * 1024;

const SALT_BYTES = 32;
const NONCE_BYTES = 24;
const KEY_BYTES = 32;

/** Seals a PKCS#8 key into a cosign key file (PEM text). */
export async function encryptPrivateKey(pkcs8: Uint8Array, passphrase: string, scrypt: Scrypt): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const key = await scrypt(new TextEncoder().encode(passphrase), salt, COSIGN_SCRYPT, KEY_BYTES);
  const ciphertext = secretbox(key, nonce).seal(pkcs8);
  const json = JSON.stringify({
    kdf: { name: "scrypt", params: COSIGN_SCRYPT, salt: toBase64(salt) },
    cipher: { name: "nacl/secretbox", nonce: toBase64(nonce) },
    ciphertext: toBase64(ciphertext),
  });
  return encodePem(ENCRYPTED_KEY_PEM, new TextEncoder().encode(json));
}

/** Whether a key file needs a passphrase (an encrypted cosign key) or not (a plain PKCS#8 key). */
export function isEncryptedKeyFile(text: string, what: string): boolean {
  const { type } = decodePem(text, what);
  return type === ENCRYPTED_KEY_PEM || type === LEGACY_ENCRYPTED_KEY_PEM;
}

/** The PKCS#8 key inside a key file; a plain `PRIVATE KEY` block needs no passphrase. */
export async function decryptPrivateKey(
  text: string,
  passphrase: string,
  scrypt: Scrypt,
  what: string,
): Promise<Uint8Array> {
  const block = decodePem(text, what);
  if (block.type === PLAIN_KEY_PEM) return block.der;
  if (block.type === "PUBLIC KEY") {
    throw new KeyError(`${what} is a public key; signing needs the private key (cosign.key)`);
  }
  if (block.type !== ENCRYPTED_KEY_PEM && block.type !== LEGACY_ENCRYPTED_KEY_PEM) {
    throw new KeyError(`${what}: a ${block.type} block is not a cosign private key`);
  }
  const sealed = parseSealed(block.der, what);
  const key = await scrypt(new TextEncoder().encode(passphrase), sealed.salt, sealed.params, KEY_BYTES);
  try {
    return secretbox(key, sealed.nonce).open(sealed.ciphertext);
  } catch {
    // The secretbox tag fails for a wrong passphrase and for a damaged file alike.
    throw new KeyError(`${what}: wrong passphrase, or the key file is damaged`);
  }
}

interface Sealed {
  params: ScryptParams;
  salt: Uint8Array;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

function parseSealed(der: Uint8Array, what: string): Sealed {
  const bad = (why: string): KeyError => new KeyError(`${what} is not a cosign key file: ${why}`);
  const json = tryParseJson(der);
  if (json === undefined) throw bad("its PEM block does not hold JSON");
  const o = json as {
    kdf?: { name?: unknown; params?: Record<string, unknown>; salt?: unknown };
    cipher?: { name?: unknown; nonce?: unknown };
    ciphertext?: unknown;
  };
  if (o?.kdf?.name !== "scrypt") throw bad(`unsupported key derivation ${JSON.stringify(o?.kdf?.name ?? null)}`);
  if (o.cipher?.name !== "nacl/secretbox") throw bad(`unsupported cipher ${JSON.stringify(o.cipher?.name ?? null)}`);
  const { N, r, p } = o.kdf.params ?? {};
  if (!isPositiveInt(N) || !isPositiveInt(r) || !isPositiveInt(p) || (N & (N - 1)) !== 0 || N < 2) {
    throw bad("scrypt parameters N, r and p must be positive integers, N a power of two");
  }
  if (128 * N * r > SCRYPT_MAX_MEMORY || p > 16)
    throw bad(`scrypt parameters N=${N} r=${r} p=${p} are beyond what is read`);
  const salt = bytes(o.kdf.salt);
  const nonce = bytes(o.cipher.nonce);
  const ciphertext = bytes(o.ciphertext);
  if (!salt || salt.length === 0) throw bad("the salt is missing");
  if (!nonce || nonce.length !== NONCE_BYTES) throw bad(`the nonce must be ${NONCE_BYTES} bytes`);
  if (!ciphertext || ciphertext.length <= 16) throw bad("the ciphertext is missing");
  return { params: { N, r, p }, salt, nonce, ciphertext };
}

function isPositiveInt(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v > 0;
}

function bytes(v: unknown): Uint8Array | undefined {
  return typeof v === "string" ? fromBase64(v) : undefined;
}
