/**
 * cosign.key and cosign.pub on disk: written as `cosign generate-key-pair` writes them, read
 * with the passphrase only when the key is encrypted. The format itself is core's
 * (core/sign/key-file.ts); this adds files, node:crypto's native scrypt and the passphrase.
 */
import { scrypt as scryptCallback } from "node:crypto";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  generateKeyPair,
  importPrivateKey,
  importPublicKey,
  publicKeyPem,
  publicKeysFromPem,
  type PublicKey,
  type SigningKey,
} from "../../../core/sign/ecdsa.ts";
import { KeyError } from "../../../core/sign/errors.ts";
import { decryptPrivateKey, encryptPrivateKey, isEncryptedKeyFile, type Scrypt } from "../../../core/sign/key-file.ts";
import { readPassphrase } from "./passphrase.ts";

export const PRIVATE_KEY_FILE = "cosign.key";
export const PUBLIC_KEY_FILE = "cosign.pub";

/** node:crypto's scrypt, with room for the parameters a key file may name (core bounds them). */
export const nodeScrypt: Scrypt = (passphrase, salt, params, length) =>
  new Promise((resolve, reject) =>
    scryptCallback(
      passphrase,
      salt,
      length,
      { N: params.N, r: params.r, p: params.p, maxmem: 512 * 1024 * 1024 },
      (err, key) => (err ? reject(err) : resolve(new Uint8Array(key))),
    ),
  );

export interface GeneratedKeys {
  privateKey: string;
  publicKey: string;
  fingerprint: string;
}

/** Writes a new pair into `dir`; refuses to overwrite either file, as cosign asks before it does. */
export async function generateKeyFiles(dir: string, passphrase: string): Promise<GeneratedKeys> {
  const privatePath = path.join(dir, PRIVATE_KEY_FILE);
  const publicPath = path.join(dir, PUBLIC_KEY_FILE);
  await mkdir(dir, { recursive: true });
  for (const file of [privatePath, publicPath]) {
    if (await exists(file)) throw new KeyError(`${file} already exists; remove it or give another --output directory`);
  }
  const { pkcs8, spki } = await generateKeyPair();
  const sealed = await encryptPrivateKey(pkcs8, passphrase, nodeScrypt);
  const publicKey = await importPublicKey(spki);
  // "wx": a file that appeared since the check above is still not overwritten.
  await writeFile(privatePath, sealed, { flag: "wx", mode: 0o600 });
  await writeFile(publicPath, publicKeyPem(publicKey), { flag: "wx", mode: 0o644 });
  return { privateKey: privatePath, publicKey: publicPath, fingerprint: publicKey.fingerprint };
}

/** The signing key in `file`, asking for its passphrase only if it is encrypted. */
export async function readSigningKey(file: string, opts: { passphraseStdin?: boolean }): Promise<SigningKey> {
  const text = await readKeyFile(file);
  const passphrase = isEncryptedKeyFile(text, file)
    ? await readPassphrase({ stdin: opts.passphraseStdin === true, prompt: `passphrase for ${file}` })
    : "";
  return importPrivateKey(await decryptPrivateKey(text, passphrase, nodeScrypt, file));
}

/** The public keys in the given files (each may hold several PUBLIC KEY blocks). */
export async function readPublicKeys(files: readonly string[]): Promise<PublicKey[]> {
  const keys = await Promise.all(files.map(async (f) => publicKeysFromPem(await readKeyFile(f), f)));
  return keys.flat();
}

async function readKeyFile(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (e) {
    throw new KeyError(`cannot read key file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
