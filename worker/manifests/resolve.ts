/**
 * From a reference to manifest bytes. Tags and digests are looked up among pushed manifests
 * first, so a literal tag always wins; a miss goes to what the registry can produce on request:
 * derived manifests by digest, 2DFS partitions for semantic tags, and the registry's own
 * signatures (`sha256-<hex>.sig`) of partitions, when it signs them (worker/signing/). What is
 * found is remembered at this location (worker/storage/edge-reads.ts).
 */
import type { Context } from "hono";
import { RegistryError } from "../../core/oci/errors.ts";
import { signedDigestOfTag } from "../../core/sign/simple-signing.ts";
import type { Reference } from "../../core/oci/reference.ts";
import type { AppEnv } from "../env.ts";
import { producePartition } from "../partitions/produce.ts";
import { manifestByDigest, tagDigest } from "../storage/edge-reads.ts";
import type { StoredManifest } from "../storage/manifests.ts";
import { registrySignatureManifest } from "../signing/respond.ts";

export async function resolveManifest(c: Context<AppEnv>, name: string, ref: Reference): Promise<StoredManifest> {
  const store = c.var.store;
  // By digest, a pushed manifest or a derived one; either is remembered at this location.
  if (ref.kind === "digest") {
    const m = await manifestByDigest(store, name, ref.digest);
    if (m) return m;
  } else {
    const digest = await tagDigest(store, name, ref.tag);
    const m = digest ? await manifestByDigest(store, name, digest) : null;
    if (m) return m;
    const produced = (await producePartition(store, name, ref.tag)) ?? (await registrySignature(c, name, ref.tag));
    if (produced) return produced;
  }
  const reference = ref.kind === "digest" ? ref.digest : ref.tag;
  throw new RegistryError("MANIFEST_UNKNOWN", undefined, { name, reference });
}

/** The registry's `.sig` manifest for a partition, when the tag names one and a signer is configured. */
async function registrySignature(c: Context<AppEnv>, name: string, tag: string): Promise<StoredManifest | null> {
  const signed = signedDigestOfTag(tag);
  if (!signed) return null;
  return registrySignatureManifest(c, name, signed);
}
