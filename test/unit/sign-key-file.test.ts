/**
 * cosign's key files: read as cosign's own test vectors are (test/fixtures/cosign), and written
 * so that an implementation that shares no code with ours (test/helpers/cosign-key.ts) opens them.
 */
import { createPrivateKey, createPublicKey, createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { generateKeyPair, importPrivateKey, publicKeyFromPem } from "../../core/sign/ecdsa.ts";
import { KeyError } from "../../core/sign/errors.ts";
import { decryptPrivateKey, encryptPrivateKey, isEncryptedKeyFile } from "../../core/sign/key-file.ts";
import { encodePem } from "../../core/sign/pem.ts";
import { nodeScrypt } from "../../builder-cli/src/sign/key-files.ts";
import { independentDecrypt } from "../helpers/cosign-key.ts";

const vector = (name: string): string => readFileSync(new URL(`../fixtures/cosign/${name}`, import.meta.url), "utf8");

/** The fingerprint of a PKCS#8 key's public half, computed by node:crypto alone. */
function nodeFingerprint(pkcs8: Uint8Array): string {
  const pub = createPublicKey(createPrivateKey({ key: Buffer.from(pkcs8), format: "der", type: "pkcs8" }));
  const spki = pub.export({ format: "der", type: "spki" });
  return `sha256:${createHash("sha256").update(spki).digest("hex")}`;
}

describe("cosign key files", () => {
  it.each(["sigstore-p256.key", "cosign-p256.key"])(
    "reads cosign's test vector %s with its passphrase",
    async (name) => {
      const text = vector(name);
      expect(isEncryptedKeyFile(text, name)).toBe(true);
      const pkcs8 = await decryptPrivateKey(text, "hello", nodeScrypt, name);
      expect(pkcs8).toEqual(independentDecrypt(text, "hello"));
      const key = await importPrivateKey(pkcs8);
      expect(key.publicKey.fingerprint).toBe(nodeFingerprint(pkcs8));
    },
  );

  it("refuses cosign's SEC1 vector as cosign does, after opening it", async () => {
    const text = vector("cosign-sec1.key");
    const der = await decryptPrivateKey(text, "hello", nodeScrypt, "cosign-sec1.key");
    await expect(importPrivateKey(der)).rejects.toThrow(/SEC1 form, not PKCS#8.*only ECDSA P-256/);
  });

  it("says a wrong passphrase is wrong", async () => {
    await expect(decryptPrivateKey(vector("sigstore-p256.key"), "hellO", nodeScrypt, "k")).rejects.toThrow(
      new KeyError("k: wrong passphrase, or the key file is damaged"),
    );
  });

  it("writes what cosign reads: its PEM type, scrypt N=32768 r=8 p=1, nacl/secretbox, 64-column base64", async () => {
    const { pkcs8 } = await generateKeyPair();
    const pem = await encryptPrivateKey(pkcs8, "correct horse", nodeScrypt);
    const lines = pem.trimEnd().split("\n");
    expect(lines[0]).toBe("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----");
    expect(lines.at(-1)).toBe("-----END ENCRYPTED SIGSTORE PRIVATE KEY-----");
    for (const l of lines.slice(1, -2)) expect(l).toHaveLength(64);
    const json = JSON.parse(Buffer.from(lines.slice(1, -1).join(""), "base64").toString("utf8"));
    expect(Object.keys(json)).toEqual(["kdf", "cipher", "ciphertext"]);
    expect(json.kdf).toMatchObject({ name: "scrypt", params: { N: 32768, r: 8, p: 1 } });
    expect(Buffer.from(json.kdf.salt, "base64")).toHaveLength(32);
    expect(json.cipher.name).toBe("nacl/secretbox");
    expect(Buffer.from(json.cipher.nonce, "base64")).toHaveLength(24);
    const opened = independentDecrypt(pem, "correct horse");
    expect(opened).toEqual(pkcs8);
    // And the key inside is one node:crypto takes as an EC P-256 PKCS#8 key.
    const k = createPrivateKey({ key: Buffer.from(opened), format: "der", type: "pkcs8" });
    expect(k.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
  });

  it("reads an unencrypted PKCS#8 key without a passphrase, as cosign imports one", async () => {
    const { pkcs8 } = await generateKeyPair();
    const pem = encodePem("PRIVATE KEY", pkcs8);
    expect(isEncryptedKeyFile(pem, "k")).toBe(false);
    expect(await decryptPrivateKey(pem, "", nodeScrypt, "k")).toEqual(pkcs8);
  });

  it.each([
    ["no PEM at all", "not a key\n", /not a PEM file/],
    [
      "a PEM block that holds no JSON",
      encodePem("ENCRYPTED SIGSTORE PRIVATE KEY", new TextEncoder().encode("\u0001\u0002")),
      /does not hold JSON/,
    ],
    [
      "another key derivation",
      sealedWith({ kdf: { name: "pbkdf2", params: { N: 2, r: 1, p: 1 }, salt: "AAAA" } }),
      /unsupported key derivation "pbkdf2"/,
    ],
    [
      "scrypt parameters that would take gigabytes",
      sealedWith({ kdf: { name: "scrypt", params: { N: 1 << 22, r: 8, p: 1 }, salt: "AAAA" } }),
      /beyond what is read/,
    ],
    [
      "N that is not a power of two",
      sealedWith({ kdf: { name: "scrypt", params: { N: 1000, r: 8, p: 1 }, salt: "AAAA" } }),
      /power of two/,
    ],
    ["a short nonce", sealedWith({ cipher: { name: "nacl/secretbox", nonce: "AAAA" } }), /nonce must be 24 bytes/],
    [
      "two keys in one file",
      `${encodePem("PRIVATE KEY", new Uint8Array([1]))}${encodePem("PRIVATE KEY", new Uint8Array([2]))}`,
      /holds 2 PEM blocks/,
    ],
    [
      "a public key",
      encodePem("PUBLIC KEY", new Uint8Array([1, 2, 3])),
      /is a public key; signing needs the private key/,
    ],
    [
      "a certificate",
      encodePem("CERTIFICATE", new Uint8Array([1, 2, 3])),
      /CERTIFICATE block is not a cosign private key/,
    ],
  ])("refuses %s with a KeyError that says why", async (_what, text, message) => {
    const attempt = decryptPrivateKey(text, "hello", nodeScrypt, "k");
    await expect(attempt).rejects.toBeInstanceOf(KeyError);
    await expect(attempt).rejects.toThrow(message);
  });

  it("refuses a private key where a public one is needed, by name", async () => {
    await expect(publicKeyFromPem(vector("sigstore-p256.key"), "cosign.pub")).rejects.toThrow(
      /cosign.pub is a private key \(ENCRYPTED SIGSTORE PRIVATE KEY\); give the public key/,
    );
  });
});

/** A sealed key file with some fields replaced. */
function sealedWith(fields: Record<string, unknown>): string {
  const base = {
    kdf: { name: "scrypt", params: { N: 32768, r: 8, p: 1 }, salt: Buffer.alloc(32).toString("base64") },
    cipher: { name: "nacl/secretbox", nonce: Buffer.alloc(24).toString("base64") },
    ciphertext: Buffer.alloc(64).toString("base64"),
  };
  return encodePem("ENCRYPTED SIGSTORE PRIVATE KEY", new TextEncoder().encode(JSON.stringify({ ...base, ...fields })));
}
