/**
 * `verify REF[--label] --key PUB`, trusting nothing but the keys: the source image's signature is
 * checked, the partition is recomputed from what the source is made of (each piece verified by
 * digest) with core's partitionImage, and the registry must serve exactly that for the semantic
 * tag, on every platform. A partition's own signatures are checked too; a registry's signature
 * counts only if what it claims (source, selection) is what was recomputed.
 */
import type { Digest, Sha256Digest } from "../../../core/oci/digest.ts";
import { imageIndexSchema } from "../../../core/oci/manifest.ts";
import { isIndexMediaType } from "../../../core/oci/media-types.ts";
import type { PublicKey } from "../../../core/sign/ecdsa.ts";
import type { SignedReference } from "../../../core/sign/identity.ts";
import { checkSignature, findSignatures, type Checked, type SignatureStore } from "../../../core/sign/verify.ts";
import { LabelError, splitSemanticTag } from "../../../core/tdfs/label.ts";
import {
  partitionImage,
  selectionOf,
  type ImagePartition,
  type SourceManifest,
} from "../../../core/tdfs/partition-image.ts";
import { formatImageRef, manifestReference, type ImageRef } from "../registry/ref.ts";
import { InputError } from "../spec/errors.ts";
import { formatPlatform } from "../store/platform.ts";
import type { RegistrySource } from "../store/registry-source.ts";
import { registrySignatureStore } from "./registry-signatures.ts";
import { registryPartitionSource } from "./sources.ts";

export interface SignatureLine {
  format: Checked["format"];
  ok: boolean;
  /** The key that verified it, or the one a bundle names when none did. */
  fingerprint?: string;
  reason?: string;
}

export interface Signed {
  reference: string;
  digest: string;
  signatures: SignatureLine[];
  /** Whether one signature verified with a given key. */
  signed: boolean;
}

export interface PlatformLine {
  platform: string;
  /** The platform manifest of the source. */
  source: string;
  /** What the partition's platform manifest must be, and what the registry serves. */
  expected?: string;
  served?: string;
  allotments?: number;
  ok: boolean;
}

export interface VerifyReport {
  reference: string;
  ok: boolean;
  source: Signed;
  partition?: Signed & { selection: string; expected: string; served: string | null };
  platforms: PlatformLine[];
  problems: string[];
}

export async function verifyReference(source: RegistrySource, keys: readonly PublicKey[]): Promise<VerifyReport> {
  const ref = source.ref;
  const repo = ref.repository;
  const client = source.client;
  const store = registrySignatureStore(client, repo);
  const repository = formatImageRef({ ...ref, tag: undefined, digest: undefined });
  const split = ref.tag !== undefined && ref.digest === undefined ? splitSemanticTag(ref.tag) : undefined;
  const baseRef: ImageRef = split ? { ...ref, tag: split.base } : ref;
  const root = await fetchRoot(source, baseRef);
  const identity: SignedReference =
    baseRef.digest === undefined && baseRef.tag !== undefined ? { repository, tag: baseRef.tag } : { repository };
  const sourceSigned = await signaturesOf(store, root.digest as Sha256Digest, keys, identity, formatImageRef(baseRef));
  const problems: string[] = [];

  if (!split) {
    const platforms = await childLines(store, root, keys, identity);
    if (!sourceSigned.signed)
      problems.push(`${sourceSigned.reference} has no signature that verifies with the given keys`);
    return { reference: formatImageRef(ref), ok: problems.length === 0, source: sourceSigned, platforms, problems };
  }

  let rects;
  try {
    rects = selectionOf(split.label, root);
  } catch (e) {
    if (e instanceof LabelError) throw new InputError(e.message);
    throw e;
  }
  const part = await partitionImage(root, rects, registryPartitionSource(source));
  if (part.kind === "not-2dfs") throw new InputError(`${formatImageRef(baseRef)} is not a 2DFS image: ${part.reason}`);
  if (part.kind === "nothing-selected") {
    throw new InputError(`"${split.label}" selects no allotment of ${formatImageRef(baseRef)}`);
  }
  const served = await client.findManifest(repo, ref.tag!);
  const partitionRef = formatImageRef(ref);
  // A registry's signature vouches for a partition of one source and selection: that must be this one.
  const sameClaims = (c: Extract<Checked, { ok: true }>): string | undefined =>
    c.claims && (c.claims.source !== root.digest || c.claims.selection !== part.selection)
      ? `it claims a partition ${c.claims.selection} of ${c.claims.source}`
      : undefined;
  const partitionSigned = await signaturesOf(
    store,
    (served?.digest ?? part.root.digest) as Sha256Digest,
    keys,
    { repository, tag: ref.tag! },
    partitionRef,
    sameClaims,
  );

  const platforms = partitionLines(root, part, served);
  if (!served) problems.push(`the registry does not serve ${partitionRef}`);
  else if (served.digest !== part.root.digest) {
    problems.push(`the registry serves ${served.digest} for ${partitionRef}, but the partition is ${part.root.digest}`);
  }
  for (const p of platforms)
    if (!p.ok) problems.push(`${p.platform}: served ${p.served ?? "nothing"}, expected ${p.expected}`);
  if (!sourceSigned.signed && !partitionSigned.signed) {
    problems.push(
      `neither ${sourceSigned.reference} nor ${partitionRef} has a signature that verifies with the given keys`,
    );
  }
  return {
    reference: partitionRef,
    ok: problems.length === 0,
    source: sourceSigned,
    partition: {
      ...partitionSigned,
      selection: part.selection,
      expected: part.root.digest,
      served: served?.digest ?? null,
    },
    platforms,
    problems,
  };
}

async function fetchRoot(source: RegistrySource, ref: ImageRef): Promise<SourceManifest> {
  const m = await source.client.findManifest(ref.repository, manifestReference(ref));
  if (!m) throw new InputError(`${formatImageRef(ref)} is not in the registry`);
  return { digest: m.digest as Digest, mediaType: m.mediaType, bytes: m.bytes };
}

/** Every signature of `digest`, checked; `refuse` may turn down one that verified, saying why. */
async function signaturesOf(
  store: SignatureStore,
  digest: Sha256Digest,
  keys: readonly PublicKey[],
  identity: SignedReference,
  reference: string,
  refuse: (c: Extract<Checked, { ok: true }>) => string | undefined = () => undefined,
): Promise<Signed> {
  const checked = await Promise.all(
    (await findSignatures(store, digest)).map((f) => checkSignature(f, digest, keys, identity)),
  );
  const signatures = checked.map((c): SignatureLine => {
    const refused = c.ok ? refuse(c) : undefined;
    if (c.ok && !refused) return { format: c.format, ok: true, fingerprint: c.key.fingerprint };
    if (c.ok) return { format: c.format, ok: false, fingerprint: c.key.fingerprint, reason: refused! };
    return { format: c.format, ok: false, reason: c.reason, ...(c.fingerprint ? { fingerprint: c.fingerprint } : {}) };
  });
  return { reference, digest, signatures, signed: signatures.some((s) => s.ok) };
}

/** For an image without a label: each platform manifest and whether it is signed too. */
async function childLines(
  store: SignatureStore,
  root: SourceManifest,
  keys: readonly PublicKey[],
  identity: SignedReference,
): Promise<PlatformLine[]> {
  if (!isIndexMediaType(root.mediaType)) return [];
  const index = imageIndexSchema.parse(JSON.parse(new TextDecoder().decode(root.bytes)));
  return Promise.all(
    index.manifests.map(async (d) => {
      const s = await signaturesOf(store, d.digest as Sha256Digest, keys, identity, d.digest);
      return { platform: d.platform ? formatPlatform(d.platform) : "(no platform)", source: d.digest, ok: s.signed };
    }),
  );
}

/** One line per platform: the partition's manifest computed here against the one the registry serves. */
function partitionLines(
  root: SourceManifest,
  part: Extract<ImagePartition, { kind: "partition" }>,
  answer: { digest: string; bytes: Uint8Array } | null,
): PlatformLine[] {
  if (!isIndexMediaType(root.mediaType)) {
    const m = part.manifests[0]!;
    const served = answer?.digest;
    return [
      {
        platform: "(single manifest)",
        source: root.digest,
        expected: m.manifest.digest,
        ...(served ? { served } : {}),
        allotments: m.allotments.length,
        ok: served === m.manifest.digest,
      },
    ];
  }
  const index = imageIndexSchema.parse(JSON.parse(new TextDecoder().decode(root.bytes)));
  const servedIndex = answer ? parseIndexOrNull(answer.bytes) : null;
  const byManifest = new Map(part.manifests.map((m) => [m.source, m]));
  return index.manifests.flatMap((entry, i) => {
    const derived = byManifest.get(entry.digest);
    if (!derived) return [];
    const served = servedIndex?.manifests[i]?.digest;
    return [
      {
        platform: entry.platform ? formatPlatform(entry.platform) : "(no platform)",
        source: entry.digest,
        expected: derived.manifest.digest,
        ...(served ? { served } : {}),
        allotments: derived.allotments.length,
        ok: served === derived.manifest.digest,
      },
    ];
  });
}

function parseIndexOrNull(bytes: Uint8Array): { manifests: { digest: string }[] } | null {
  try {
    const r = imageIndexSchema.safeParse(JSON.parse(new TextDecoder().decode(bytes)));
    return r.success ? r.data : null;
  } catch {
    return null;
  }
}
