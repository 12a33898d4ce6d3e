/**
 * ECDSA P-256 with SHA-256, the algorithm of `cosign generate-key-pair`, through WebCrypto so the
 * Worker and the CLI share it. Signatures travel as ASN.1 DER (what cosign and Sigstore write);
 * WebCrypto speaks the fixed 64-byte r||s form, so this module converts at its edges.
 */
import { fromBase64, toBase64 } from "../encoding/base64.ts";
import { toHex } from "../oci/digest.ts";
import { KeyError } from "./errors.ts";
import { decodePems, encodePem } from "./pem.ts";

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGN = { name: "ECDSA", hash: "SHA-256" } as const;
const COORDINATE = 32;

/** WebCrypto's key type, named through the API so that Node's and the Workers' typings both accept it. */
type WebKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

export interface PublicKey {
  key: WebKey;
  /** SubjectPublicKeyInfo, DER. */
  spki: Uint8Array;
  /** `sha256:<hex>` of the SPKI: how this project names a key everywhere it shows one. */
  fingerprint: string;
  /** base64 of the same hash: the `publicKey.hint` of a Sigstore bundle signed with this key. */
  hint: string;
}

export interface SigningKey {
  privateKey: WebKey;
  publicKey: PublicKey;
}

/** A fresh key pair, as DER: PKCS#8 for the private key, SPKI for the public one. */
export async function generateKeyPair(): Promise<{ pkcs8: Uint8Array; spki: Uint8Array }> {
  const pair = (await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"])) as {
    privateKey: WebKey;
    publicKey: WebKey;
  };
  const [pkcs8, spki] = await Promise.all([
    crypto.subtle.exportKey("pkcs8", pair.privateKey) as Promise<ArrayBuffer>,
    crypto.subtle.exportKey("spki", pair.publicKey) as Promise<ArrayBuffer>,
  ]);
  return { pkcs8: new Uint8Array(pkcs8), spki: new Uint8Array(spki) };
}

/** A PKCS#8 private key; its public half is derived from it. */
export async function importPrivateKey(pkcs8: Uint8Array): Promise<SigningKey> {
  const privateKey = await importDer("pkcs8", pkcs8, "sign");
  // The public point is in the private key's JWK; WebCrypto has no other way to derive it.
  const jwk = (await crypto.subtle.exportKey("jwk", privateKey)) as unknown as {
    kty: string;
    crv: string;
    x: string;
    y: string;
  };
  const publicJwk = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, ext: true };
  const key = await crypto.subtle.importKey("jwk", publicJwk, ALGORITHM, true, ["verify"]);
  return { privateKey, publicKey: await describePublic(key) };
}

/** A SubjectPublicKeyInfo (DER). */
export async function importPublicKey(spki: Uint8Array): Promise<PublicKey> {
  return describePublic(await importDer("spki", spki, "verify"));
}

/**
 * Public keys from PEM text: one `PUBLIC KEY` block or several (a list of trusted keys). A private
 * key here is refused by name, so a mix-up of the two files is told as one.
 */
export async function publicKeysFromPem(text: string, what: string): Promise<PublicKey[]> {
  const blocks = decodePems(text, what);
  for (const b of blocks) {
    if (b.type !== "PUBLIC KEY") {
      throw new KeyError(
        b.type.includes("PRIVATE")
          ? `${what} is a private key (${b.type}); give the public key (cosign.pub) here`
          : `${what}: a ${b.type} block is not a public key (expected PUBLIC KEY)`,
      );
    }
  }
  return Promise.all(blocks.map((b) => importPublicKey(b.der)));
}

/** The one public key of a file such as cosign.pub. */
export async function publicKeyFromPem(text: string, what: string): Promise<PublicKey> {
  const keys = await publicKeysFromPem(text, what);
  if (keys.length !== 1) throw new KeyError(`${what} holds ${keys.length} keys; give one`);
  return keys[0] as PublicKey;
}

export function publicKeyPem(key: PublicKey): string {
  return encodePem("PUBLIC KEY", key.spki);
}

/** Signs `data` (SHA-256 inside); the signature as DER. */
export async function sign(key: SigningKey, data: Uint8Array): Promise<Uint8Array> {
  const raw = new Uint8Array(await crypto.subtle.sign(SIGN, key.privateKey, data as Uint8Array<ArrayBuffer>));
  return rawToDer(raw);
}

/** Whether a DER signature over `data` verifies with `key`; a malformed signature simply does not. */
export async function verify(key: PublicKey, data: Uint8Array, der: Uint8Array): Promise<boolean> {
  const raw = derToRaw(der);
  if (!raw) return false;
  return crypto.subtle.verify(SIGN, key.key, raw as Uint8Array<ArrayBuffer>, data as Uint8Array<ArrayBuffer>);
}

/** The fingerprint a bundle's `publicKey.hint` stands for (`sha256:<hex>`), or undefined. */
export function fingerprintOfHint(hint: string): string | undefined {
  const bytes = fromBase64(hint);
  return bytes?.length === 32 ? `sha256:${toHex(bytes)}` : undefined;
}

/** A DER key into WebCrypto; a key of another kind is a KeyError that names what it is. */
async function importDer(format: "pkcs8" | "spki", der: Uint8Array, usage: "sign" | "verify"): Promise<WebKey> {
  try {
    return await crypto.subtle.importKey(format, der as Uint8Array<ArrayBuffer>, ALGORITHM, true, [usage]);
  } catch {
    const which = format === "pkcs8" ? "private" : "public";
    throw new KeyError(`the ${which} key is ${describeKey(der)}; only ECDSA P-256 keys are supported`);
  }
}

async function describePublic(key: WebKey): Promise<PublicKey> {
  const spki = new Uint8Array((await crypto.subtle.exportKey("spki", key)) as ArrayBuffer);
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", spki));
  return { key, spki, fingerprint: `sha256:${toHex(hash)}`, hint: toBase64(hash) };
}

/** What kind of key the DER holds, for an error message: the algorithm OIDs cosign may write. */
function describeKey(der: Uint8Array): string {
  const hex = toHex(der);
  // SEQUENCE { INTEGER 1, OCTET STRING ... }: an ECPrivateKey (SEC1), which PKCS#8 wraps.
  if (/^30(?:[0-7][0-9a-f]|81[0-9a-f]{2})020101/.test(hex)) return "an EC key in SEC1 form, not PKCS#8";
  if (hex.includes("2a864886f70d010101")) return "an RSA key";
  if (hex.includes("2b6570")) return "an Ed25519 key";
  if (hex.includes("2b81040022")) return "an ECDSA P-384 key";
  if (hex.includes("2b81040023")) return "an ECDSA P-521 key";
  return "not a key this tool can read";
}

/** r||s (64 bytes) as DER: SEQUENCE { INTEGER r, INTEGER s }, each minimal and positive. */
export function rawToDer(raw: Uint8Array): Uint8Array {
  const integer = (half: Uint8Array): number[] => {
    let i = 0;
    while (i < half.length - 1 && half[i] === 0) i++;
    const body = [...half.subarray(i)];
    if ((body[0] as number) & 0x80) body.unshift(0);
    return [0x02, body.length, ...body];
  };
  const seq = [...integer(raw.subarray(0, COORDINATE)), ...integer(raw.subarray(COORDINATE))];
  return Uint8Array.from([0x30, seq.length, ...seq]);
}

/** DER as r||s, or undefined for anything that is not a strict DER ECDSA signature of P-256 size. */
export function derToRaw(der: Uint8Array): Uint8Array | undefined {
  if (der.length < 8 || der[0] !== 0x30 || der[1] !== der.length - 2) return undefined;
  const out = new Uint8Array(2 * COORDINATE);
  let at = 2;
  for (const half of [0, 1]) {
    if (der[at] !== 0x02) return undefined;
    const len = der[at + 1] as number;
    const start = at + 2;
    if (len === 0 || len > COORDINATE + 1 || start + len > der.length) return undefined;
    let value = der.subarray(start, start + len);
    // Minimal encoding: a leading zero only where the next byte's high bit is set.
    if (value[0] === 0 && (len === 1 || !((value[1] as number) & 0x80))) return undefined;
    if ((value[0] as number) & 0x80) return undefined;
    if (value[0] === 0) value = value.subarray(1);
    if (value.length > COORDINATE) return undefined;
    out.set(value, half * COORDINATE + COORDINATE - value.length);
    at = start + len;
  }
  return at === der.length ? out : undefined;
}
