/** The signatures a repository stores, as core's verifier reads them (core/sign/verify.ts). */
import { SIGNATURE_BLOB_MAX, type SignatureStore } from "../../core/sign/verify.ts";
import type { Store } from "../storage/store.ts";

export function storedSignatures(store: Store, name: string): SignatureStore {
  const manifest = async (digest: Parameters<SignatureStore["manifestByDigest"]>[0]) =>
    (await store.manifests.get(name, digest))?.bytes ?? null;
  return {
    manifestByTag: async (tag) => {
      const digest = await store.manifests.resolveTag(name, tag);
      return digest ? manifest(digest) : null;
    },
    manifestByDigest: manifest,
    blob: async (digest) => {
      const info = await store.blobs.stat(name, digest);
      if (!info || info.size > SIGNATURE_BLOB_MAX) return null;
      return new Uint8Array(await new Response(await store.blobs.open(info)).arrayBuffer());
    },
    referrers: async (digest, artifactType) =>
      (await store.manifests.referrers(name, digest)).filter((d) => d.artifactType === artifactType),
  };
}
