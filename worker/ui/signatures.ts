/**
 * What the web view says about an image's or a partition's signatures: each one found (the
 * layers of its `.sig` manifest, the bundles among its referrers, and what the registry signs
 * itself), the key that made it, and whether that was checked. With PARTITION_TRUSTED_KEYS set,
 * a signature by one of them is checked here; otherwise a bundle only names its key (a hint the
 * page reports as unchecked) and a `.sig` layer names none.
 */
import type { Context } from "hono";
import type { Digest, Sha256Digest } from "../../core/oci/digest.ts";
import { parseBundle } from "../../core/sign/bundle.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import { fingerprintOfHint, type PublicKey } from "../../core/sign/ecdsa.ts";
import { parseSimpleSigningPayload } from "../../core/sign/simple-signing.ts";
import { checkSignature, findSignatures, type Found } from "../../core/sign/verify.ts";
import type { AppEnv } from "../env.ts";
import { registrySignatures } from "../signing/respond.ts";
import { partitionSigner } from "../signing/settings.ts";
import type { PartitionSigner, RegistrySignatures } from "../signing/signer.ts";
import { storedSignatures } from "../signing/stored-signatures.ts";

export interface SignatureRow {
  format: "simple-signing" | "bundle";
  /** `sha256:<hex>` of the key, when known. */
  fingerprint?: string;
  /** How the key is known: checked against a trusted key, named by the bundle, or the registry's own. */
  checked: "trusted key" | "registry key" | "named, not checked" | "unknown key";
  /** The reference a simple-signing payload claims. */
  identity?: string;
}

export interface SignatureView {
  digest: Digest;
  rows: SignatureRow[];
  /** Why the registry's own signing could not be consulted (its settings are broken). */
  problem?: string;
}

export async function signaturesView(c: Context<AppEnv>, name: string, digest: Digest): Promise<SignatureView> {
  if (!digest.startsWith("sha256:")) return { digest, rows: [] };
  const found = await findSignatures(storedSignatures(c.var.store, name), digest as Sha256Digest);
  let signer: PartitionSigner | null = null;
  let own: RegistrySignatures | null = null;
  let problem: string | undefined;
  try {
    signer = await partitionSigner(c.env);
    own = await registrySignatures(c, name, digest);
  } catch (e) {
    if (!(e instanceof RegistryError)) throw e;
    problem = e.message;
  }
  const rows = await Promise.all(found.map((f) => rowOf(f, digest, signer?.trusted ?? [])));
  if (signer && own) {
    const fingerprint = signer.key.publicKey.fingerprint;
    const identity = `${new URL(c.req.url).host}/${name}`;
    // A pushed .sig tag is served instead of the registry's own (worker/manifests/resolve.ts).
    if (!found.some((f) => f.format === "simple-signing")) {
      rows.push({ format: "simple-signing", fingerprint, checked: "registry key", identity });
    }
    for (const _ of own.referrers) rows.push({ format: "bundle", fingerprint, checked: "registry key" });
  }
  return { digest, rows, ...(problem ? { problem } : {}) };
}

async function rowOf(f: Found, digest: Digest, trusted: readonly PublicKey[]): Promise<SignatureRow> {
  const check = trusted.length ? await checkSignature(f, digest, trusted) : undefined;
  const identity = f.format === "simple-signing" ? parseSimpleSigningPayload(f.payload)?.dockerReference : undefined;
  const base = { format: f.format, ...(identity ? { identity } : {}) };
  if (check?.ok) return { ...base, fingerprint: check.key.fingerprint, checked: "trusted key" };
  const hint = f.format === "bundle" ? parseBundle(f.bundle)?.hint : undefined;
  const named = hint ? fingerprintOfHint(hint) : undefined;
  return named ? { ...base, fingerprint: named, checked: "named, not checked" } : { ...base, checked: "unknown key" };
}
