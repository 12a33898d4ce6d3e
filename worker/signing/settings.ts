/**
 * The registry's signer, built once per isolate from its secrets: decrypting a cosign key runs
 * scrypt, which is too slow to repeat per request. Off (null) unless both the key and the trusted
 * keys are set; set but unreadable, every request that needs it is refused with a 503 that says
 * why, rather than answered as if nothing were signed.
 */
import { scrypt } from "node:crypto";
import { RegistryError } from "../../core/oci/errors.ts";
import { importPrivateKey, publicKeysFromPem } from "../../core/sign/ecdsa.ts";
import { KeyError } from "../../core/sign/errors.ts";
import { decryptPrivateKey, type Scrypt } from "../../core/sign/key-file.ts";
import type { SigningBindings } from "./bindings.ts";
import { PartitionSigner } from "./signer.ts";

const nodeScrypt: Scrypt = (passphrase, salt, params, length) =>
  new Promise((resolve, reject) =>
    scrypt(passphrase, salt, length, { ...params, maxmem: 512 * 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(new Uint8Array(key)),
    ),
  );

let built: { config: string; signer: Promise<PartitionSigner> } | undefined;

/** Whether any signing secret is set (then partitionSigner builds, or explains why it cannot). */
export function signingConfigured(env: SigningBindings): boolean {
  return Boolean(env.PARTITION_SIGNING_KEY?.trim() || env.PARTITION_TRUSTED_KEYS?.trim());
}

export async function partitionSigner(env: SigningBindings): Promise<PartitionSigner | null> {
  const key = env.PARTITION_SIGNING_KEY?.trim();
  const trusted = env.PARTITION_TRUSTED_KEYS?.trim();
  if (!key && !trusted) return null;
  const config = `${key}\n${env.PARTITION_SIGNING_KEY_PASSPHRASE ?? ""}\n${trusted}`;
  if (built?.config !== config) built = { config, signer: build(key, env.PARTITION_SIGNING_KEY_PASSPHRASE, trusted) };
  return built.signer;
}

async function build(key: string | undefined, passphrase: string | undefined, trusted: string | undefined) {
  try {
    if (!key) throw new KeyError("PARTITION_TRUSTED_KEYS is set but PARTITION_SIGNING_KEY is not");
    if (!trusted) throw new KeyError("PARTITION_SIGNING_KEY is set but PARTITION_TRUSTED_KEYS is not");
    const pkcs8 = await decryptPrivateKey(key, passphrase ?? "", nodeScrypt, "PARTITION_SIGNING_KEY");
    return new PartitionSigner(
      await importPrivateKey(pkcs8),
      await publicKeysFromPem(trusted, "PARTITION_TRUSTED_KEYS"),
    );
  } catch (e) {
    if (!(e instanceof KeyError)) throw e;
    console.error("partition signing is misconfigured:", e.message);
    throw new RegistryError("UNAVAILABLE", `partition signing is misconfigured: ${e.message}`);
  }
}
