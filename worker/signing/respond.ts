/**
 * Where the registry's own signatures enter the API: the referrers of a partition, and its
 * `sha256-<hex>.sig` tag. Only a manifest the registry derived is ever signed; for anything
 * else, and when signing is off, these add nothing and cost nothing but a settings check.
 */
import type { Context } from "hono";
import type { Digest } from "../../core/oci/digest.ts";
import type { Descriptor } from "../../core/oci/manifest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import type { AppEnv } from "../env.ts";
import type { StoredManifest } from "../storage/manifests.ts";
import { partitionSigner, signingConfigured } from "./settings.ts";
import type { RegistrySignatures } from "./signer.ts";

export async function registryReferrers(c: Context<AppEnv>, name: string, digest: Digest): Promise<Descriptor[]> {
  return (await registrySignatures(c, name, digest))?.referrers ?? [];
}

export async function registrySignatureManifest(
  c: Context<AppEnv>,
  name: string,
  digest: Digest,
): Promise<StoredManifest | null> {
  const s = await registrySignatures(c, name, digest);
  if (!s) return null;
  return { digest: s.sig.digest, mediaType: MediaType.OciManifest, bytes: new TextEncoder().encode(s.sig.body) };
}

export async function registrySignatures(
  c: Context<AppEnv>,
  name: string,
  digest: Digest,
): Promise<RegistrySignatures | null> {
  if (!signingConfigured(c.env)) return null;
  const store = c.var.store;
  const provenance = await store.derived.provenance(name, digest);
  if (!provenance) return null;
  const signer = await partitionSigner(c.env);
  return signer ? signer.signaturesOf(store, name, digest, provenance, new URL(c.req.url).host) : null;
}
