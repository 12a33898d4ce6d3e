/**
 * Finding and checking the signatures of a manifest, in both formats verifiers read: the layers of
 * its `sha256-<hex>.sig` manifest (simple signing) and the Sigstore bundles among its referrers.
 * Where they are read from is the caller's: the CLI reads a registry over HTTP, the Worker its
 * own store. A signature passes only if it verifies with one of the given keys and names the
 * digest; each one that does not says why.
 */
import { fromBase64 } from "../encoding/base64.ts";
import type { Digest, Sha256Digest } from "../oci/digest.ts";
import { parseManifest, type Descriptor } from "../oci/manifest.ts";
import {
  BUNDLE_MEDIA_TYPE,
  COSIGN_SIGN_PREDICATE,
  INTOTO_PAYLOAD_TYPE,
  pae,
  parseBundle,
  parseStatement,
  type Statement,
} from "./bundle.ts";
import { fingerprintOfHint, verify, type PublicKey } from "./ecdsa.ts";
import { identityMatches, type SignedReference } from "./identity.ts";
import {
  claimsFromAnnotations,
  claimsFromPredicate,
  PARTITION_PREDICATE,
  type PartitionClaims,
} from "./partition-claims.ts";
import {
  parseSimpleSigningPayload,
  signatureLayersOf,
  signatureTag,
  type SimpleSigningPayload,
} from "./simple-signing.ts";

/** Signatures are small; anything larger is not read. */
export const SIGNATURE_BLOB_MAX = 1024 * 1024;

export interface SignatureStore {
  /** A manifest by tag, or null when the repository has no such tag. */
  manifestByTag(tag: string): Promise<Uint8Array | null>;
  manifestByDigest(digest: Digest): Promise<Uint8Array | null>;
  /** A small blob's bytes (at most SIGNATURE_BLOB_MAX), or null when it is missing. */
  blob(digest: Digest): Promise<Uint8Array | null>;
  /** The referrers of `digest` whose artifactType is `artifactType`. */
  referrers(digest: Digest, artifactType: string): Promise<Descriptor[]>;
}

export type Found =
  | { format: "simple-signing"; payload: Uint8Array; signature: Uint8Array | undefined; layer: Digest }
  | { format: "bundle"; bundle: Uint8Array; referrer: Digest; annotations: Record<string, string> };

/** Every signature stored for `digest`, unchecked. */
export async function findSignatures(store: SignatureStore, digest: Sha256Digest): Promise<Found[]> {
  const [simple, bundles] = await Promise.all([simpleSignatures(store, digest), bundleSignatures(store, digest)]);
  return [...simple, ...bundles];
}

async function simpleSignatures(store: SignatureStore, digest: Sha256Digest): Promise<Found[]> {
  const bytes = await store.manifestByTag(signatureTag(digest));
  if (!bytes) return [];
  const parsed = parseManifestOrNull(bytes);
  if (!parsed || parsed.kind !== "manifest") return [];
  const layers = signatureLayersOf(parsed.manifest.layers);
  return Promise.all(
    layers.map(async (l): Promise<Found> => {
      const payload = (l.size <= SIGNATURE_BLOB_MAX ? await store.blob(l.digest) : null) ?? new Uint8Array();
      return { format: "simple-signing", payload, signature: fromBase64(l.signature), layer: l.digest };
    }),
  );
}

async function bundleSignatures(store: SignatureStore, digest: Sha256Digest): Promise<Found[]> {
  const referrers = await store.referrers(digest, BUNDLE_MEDIA_TYPE);
  const found = await Promise.all(
    referrers.map(async (r): Promise<Found[]> => {
      const bytes = r.size <= SIGNATURE_BLOB_MAX ? await store.manifestByDigest(r.digest) : null;
      const parsed = bytes ? parseManifestOrNull(bytes) : null;
      if (!parsed || parsed.kind !== "manifest") return [];
      return Promise.all(
        parsed.manifest.layers
          .filter((l) => l.mediaType === BUNDLE_MEDIA_TYPE && l.size <= SIGNATURE_BLOB_MAX)
          .map(async (l): Promise<Found> => ({
            format: "bundle",
            bundle: (await store.blob(l.digest)) ?? new Uint8Array(),
            referrer: r.digest,
            annotations: parsed.manifest.annotations ?? {},
          })),
      );
    }),
  );
  return found.flat();
}

/** Statements that vouch for the manifest they name: cosign's signature, and a partition's attestation. */
const SIGNATURE_PREDICATES: readonly string[] = [COSIGN_SIGN_PREDICATE, PARTITION_PREDICATE];

export type Checked =
  | {
      ok: true;
      format: Found["format"];
      key: PublicKey;
      /** What the signature claims beyond the digest: the docker reference and `optional`, or the statement. */
      simple?: SimpleSigningPayload;
      statement?: Statement;
      /** What a registry's signature of a partition claims about its source (partition-claims.ts). */
      claims?: PartitionClaims;
    }
  | { ok: false; format: Found["format"]; reason: string; fingerprint?: string };

/**
 * Checks one signature of `digest` against `keys`. With `identity`, a simple-signing payload must
 * also claim it (bundles carry no identity: their statement names the digest alone).
 */
export async function checkSignature(
  found: Found,
  digest: Digest,
  keys: readonly PublicKey[],
  identity?: SignedReference,
): Promise<Checked> {
  if (found.format === "simple-signing") {
    const payload = parseSimpleSigningPayload(found.payload);
    if (!payload) return { ok: false, format: found.format, reason: "the payload is not a cosign image signature" };
    if (payload.digest !== digest) {
      return { ok: false, format: found.format, reason: `the payload names ${payload.digest}, not ${digest}` };
    }
    if (identity && !identityMatches(payload.dockerReference, identity)) {
      return { ok: false, format: found.format, reason: `the payload names ${payload.dockerReference}` };
    }
    const key = await keyThatVerifies(keys, found.payload, found.signature);
    if (!key) return { ok: false, format: found.format, reason: "no given key verifies the signature" };
    const claims = claimsFromAnnotations(payload.optional);
    return { ok: true, format: found.format, key, simple: payload, ...(claims ? { claims } : {}) };
  }
  const bundle = parseBundle(found.bundle);
  if (!bundle) return { ok: false, format: found.format, reason: "the referrer holds no DSSE bundle" };
  const fingerprint = bundle.hint ? fingerprintOfHint(bundle.hint) : undefined;
  const failed = (reason: string): Checked => ({
    ok: false,
    format: found.format,
    reason,
    ...(fingerprint ? { fingerprint } : {}),
  });
  if (bundle.payloadType !== INTOTO_PAYLOAD_TYPE) return failed(`the envelope holds ${bundle.payloadType}`);
  const statement = parseStatement(bundle.payload);
  if (!statement) return failed("the envelope does not hold an in-toto statement");
  const subject = statement.subjects.find((s) => s.digest === digest);
  if (!subject) {
    return failed(
      `the statement names ${statement.subjects.map((s) => s.digest).join(", ") || "no digest"}, not ${digest}`,
    );
  }
  // Only what vouches for the image counts: an SBOM or provenance attestation does not.
  if (!SIGNATURE_PREDICATES.includes(statement.predicateType)) {
    return failed(`the statement is a ${statement.predicateType} attestation, not a signature`);
  }
  const signed = pae(bundle.payloadType, bundle.payload);
  for (const sig of bundle.signatures) {
    const key = await keyThatVerifies(keys, signed, sig);
    if (!key) continue;
    const claims =
      statement.predicateType === PARTITION_PREDICATE
        ? claimsFromPredicate(statement.predicate)
        : claimsFromAnnotations(subject.annotations);
    if (statement.predicateType === PARTITION_PREDICATE && !claims) return failed("the attestation names no source");
    return { ok: true, format: found.format, key, statement, ...(claims ? { claims } : {}) };
  }
  return failed("no given key verifies the signature");
}

async function keyThatVerifies(
  keys: readonly PublicKey[],
  data: Uint8Array,
  signature: Uint8Array | undefined,
): Promise<PublicKey | undefined> {
  if (!signature) return undefined;
  for (const key of keys) if (await verify(key, data, signature)) return key;
  return undefined;
}

function parseManifestOrNull(bytes: Uint8Array): ReturnType<typeof parseManifest> | null {
  try {
    return parseManifest(bytes, null);
  } catch {
    return null;
  }
}
