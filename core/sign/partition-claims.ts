/**
 * What a registry's signature of a partition claims (docs/signing.md, "The registry's key"): the
 * image it was derived from, the canonical selection, and the key that had signed that image.
 * The attestation carries them as its predicate; the plain signatures beside it carry the same
 * as annotations (simple signing's `optional`, the statement subject's annotations), so that a
 * verifier reading either format can check the claim against its own recomputation.
 */
import { isDigest, type Digest } from "../oci/digest.ts";

/** The predicate type of a partition attestation. An identifier, not a URL anything is fetched from. */
export const PARTITION_PREDICATE = "https://2dfs.dev/attestation/partition/v1";

const SOURCE = "2dfs.derived.source";
const MANIFEST = "2dfs.derived.manifest";
const SELECTION = "2dfs.derived.selection";
const SIGNER = "2dfs.derived.source-signer";

export interface PartitionClaims {
  /** The signed image: the index (or single manifest) the semantic tag's base names. */
  source: Digest;
  /** For a platform manifest of a partition, the platform manifest it was computed from. */
  manifest?: Digest;
  /** The canonical selection (core/tdfs/label.ts canonicalSelection). */
  selection: string;
  /** The fingerprint of the key whose signature on `source` the registry checked. */
  sourceSigner: string;
}

export function claimsAnnotations(c: PartitionClaims): Record<string, string> {
  return {
    [SOURCE]: c.source,
    ...(c.manifest ? { [MANIFEST]: c.manifest } : {}),
    [SELECTION]: c.selection,
    [SIGNER]: c.sourceSigner,
  };
}

export function claimsFromAnnotations(
  a: Readonly<Record<string, string>> | null | undefined,
): PartitionClaims | undefined {
  const source = a?.[SOURCE];
  const selection = a?.[SELECTION];
  const signer = a?.[SIGNER];
  const manifest = a?.[MANIFEST];
  if (!source || !isDigest(source) || selection === undefined || !signer) return undefined;
  return {
    source,
    ...(manifest && isDigest(manifest) ? { manifest } : {}),
    selection,
    sourceSigner: signer,
  };
}

/** The attestation's predicate: the same claims as JSON. */
export function partitionPredicate(c: PartitionClaims): Record<string, unknown> {
  return {
    source: c.source,
    ...(c.manifest ? { manifest: c.manifest } : {}),
    selection: c.selection,
    sourceSigner: c.sourceSigner,
  };
}

export function claimsFromPredicate(p: Readonly<Record<string, unknown>>): PartitionClaims | undefined {
  const { source, manifest, selection, sourceSigner } = p;
  if (typeof source !== "string" || !isDigest(source) || typeof selection !== "string") return undefined;
  if (typeof sourceSigner !== "string") return undefined;
  return {
    source,
    ...(typeof manifest === "string" && isDigest(manifest) ? { manifest } : {}),
    selection,
    sourceSigner,
  };
}
