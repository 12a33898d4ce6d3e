/**
 * cosign's key-file decryption as go-securesystemslib documents it, written with other libraries
 * than the project's (node:crypto's scrypt, tweetnacl's secretbox): what shows that a key made by
 * `2dfs-push key generate` opens as cosign opens it.
 */
import { scryptSync } from "node:crypto";
import nacl from "tweetnacl";

export function independentDecrypt(pem: string, passphrase: string): Uint8Array {
  const body = pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  const sealed = JSON.parse(Buffer.from(body, "base64").toString("utf8")) as {
    kdf: { name: string; params: { N: number; r: number; p: number }; salt: string };
    cipher: { name: string; nonce: string };
    ciphertext: string;
  };
  if (sealed.kdf.name !== "scrypt" || sealed.cipher.name !== "nacl/secretbox") throw new Error("not a cosign key file");
  const { N, r, p } = sealed.kdf.params;
  const key = scryptSync(passphrase, Buffer.from(sealed.kdf.salt, "base64"), 32, { N, r, p, maxmem: 256 << 20 });
  const opened = nacl.secretbox.open(
    Buffer.from(sealed.ciphertext, "base64"),
    Buffer.from(sealed.cipher.nonce, "base64"),
    new Uint8Array(key),
  );
  if (!opened) throw new Error("secretbox did not open: wrong passphrase");
  return opened;
}
