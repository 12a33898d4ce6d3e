/**
 * The registry as a signer, for partitions nobody pre-signed (docs/signing.md). Asked for the
 * signatures of a partition it derived (its referrers, or its `sha256-<hex>.sig` tag), it checks
 * that the image the partition came from carries a signature by a trusted key, and if so signs
 * the partition with its own key in both formats: a `.sig` manifest and, as referrers, a cosign
 * signature bundle and an attestation whose predicate names the source, the canonical selection
 * and the source signer's fingerprint. If no trusted key signed the source, it signs nothing.
 *
 * What it signs is stored as derived objects and remembered in KV like the partition itself: a
 * signature is made once per partition, registry key and host name, not once per request.
 */
import type { Digest, Sha256Digest } from "../../core/oci/digest.ts";
import type { Descriptor } from "../../core/oci/manifest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { BUNDLE_MEDIA_TYPE, EMPTY_CONFIG } from "../../core/sign/bundle.ts";
import type { PublicKey, SigningKey } from "../../core/sign/ecdsa.ts";
import {
  claimsAnnotations,
  PARTITION_PREDICATE,
  partitionPredicate,
  type PartitionClaims,
} from "../../core/sign/partition-claims.ts";
import { signBundle, signSimple, type BundleSignature, type SignTarget } from "../../core/sign/sign.ts";
import { signatureManifest } from "../../core/sign/simple-signing.ts";
import { checkSignature, findSignatures } from "../../core/sign/verify.ts";
import type { Content } from "../../core/tdfs/partition.ts";
import type { Provenance } from "../storage/derived.ts";
import type { Store } from "../storage/store.ts";
import { storedSignatures } from "./stored-signatures.ts";

/** What is remembered in KV for one partition, key and host. */
export interface RegistrySignatures {
  /** The `.sig` manifest. */
  sig: { digest: Digest; body: string };
  /** The signature bundle and the attestation, as the referrers API lists them. */
  referrers: Descriptor[];
}

export class PartitionSigner {
  readonly key: SigningKey;
  readonly trusted: readonly PublicKey[];

  constructor(key: SigningKey, trusted: readonly PublicKey[]) {
    this.key = key;
    this.trusted = trusted;
  }

  /**
   * The registry's signatures of the derived manifest `digest` (computed from `provenance`), made
   * now or remembered; null when no trusted key signed its source.
   */
  async signaturesOf(
    store: Store,
    name: string,
    digest: Digest,
    provenance: Provenance,
    host: string,
  ): Promise<RegistrySignatures | null> {
    const cacheKey = await store.partitionCache.key(
      name,
      digest,
      `signature:${this.key.publicKey.fingerprint}:${host}`,
    );
    const seen = await store.partitionCache.get<RegistrySignatures>(cacheKey);
    if (seen && (await store.derived.touchManifest(name, seen.sig.digest))) return seen;

    const signer = await this.sourceSigner(store, name, [provenance.image, provenance.source]);
    if (!signer) return null;
    const claims: PartitionClaims = {
      source: provenance.image,
      ...(provenance.source !== provenance.image ? { manifest: provenance.source } : {}),
      selection: provenance.selection,
      sourceSigner: signer,
    };
    const subject = await store.derived.getManifest(name, digest);
    if (!subject) return null;
    const target: SignTarget = {
      // Which semantic tags name this partition is not known here: the signature names the
      // repository, which containers/image's matchRepository rule (or a pull by digest) accepts.
      identity: `${host}/${name}`,
      subject: { mediaType: subject.mediaType, digest, size: subject.bytes.length },
      claims: claimsAnnotations(claims),
    };
    const created = new Date();
    const [simple, signature, attestation] = await Promise.all([
      signSimple(this.key, target),
      signBundle(this.key, target, { created }),
      signBundle(
        this.key,
        { ...target, claims: {} },
        { created, predicateType: PARTITION_PREDICATE, predicate: partitionPredicate(claims) },
      ),
    ]);
    const sig = await signatureManifest([simple.layer]);
    const blobs: Content[] = [
      content(simple.payload, simple.layer.digest),
      content(sig.config, sig.configDigest),
      ...[signature, attestation].map((b) => content(b.bundle, b.referrer.bundleDigest)),
      content(EMPTY_CONFIG, signature.referrer.configDigest),
    ];
    await Promise.all(blobs.map((b) => store.derived.putBlob(name, b)));
    // Stored without provenance: what the registry signed is not itself a partition to sign.
    await Promise.all(
      [signature, attestation].map((b) =>
        store.derived.putManifest(name, content(b.referrer.manifest, b.referrer.digest), MediaType.OciManifest),
      ),
    );
    // The .sig manifest last: it is what the KV entry is checked by, so it exists only once all else does.
    await store.derived.putManifest(name, content(sig.manifest, sig.digest), MediaType.OciManifest);
    const remembered: RegistrySignatures = {
      sig: { digest: sig.digest, body: new TextDecoder().decode(sig.manifest) },
      referrers: [signature, attestation].map(referrerDescriptor),
    };
    await store.partitionCache.put(cacheKey, remembered);
    return remembered;
  }

  /** The fingerprint of a trusted key that signed one of `digests` (the image, or the platform manifest). */
  private async sourceSigner(store: Store, name: string, digests: readonly Digest[]): Promise<string | null> {
    const signatures = storedSignatures(store, name);
    for (const d of new Set(digests)) {
      if (!d.startsWith("sha256:")) continue;
      for (const found of await findSignatures(signatures, d as Sha256Digest)) {
        const check = await checkSignature(found, d, this.trusted);
        // A registry's own signature of a partition is no signature of a source.
        if (check.ok && !check.claims) return check.key.fingerprint;
      }
    }
    return null;
  }
}

function content(bytes: Uint8Array, digest: Digest): Content {
  return { bytes, digest, size: bytes.length };
}

function referrerDescriptor(b: BundleSignature): Descriptor {
  const m = JSON.parse(new TextDecoder().decode(b.referrer.manifest)) as { annotations: Record<string, string> };
  return {
    mediaType: MediaType.OciManifest,
    digest: b.referrer.digest,
    size: b.referrer.manifest.length,
    artifactType: BUNDLE_MEDIA_TYPE,
    annotations: m.annotations,
  };
}
