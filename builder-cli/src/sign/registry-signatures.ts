/**
 * Signatures in a registry, through the registry client: read for verification, and written in
 * both formats. A `.sig` manifest gets our layer appended (another signer's layers stay); a
 * signature already there, by the same key for the same claim, is not written again, so a push
 * repeated with --sign adds nothing.
 */
import pLimit from "p-limit";
import { fromBase64 } from "../../../core/encoding/base64.ts";
import { sha256, type Digest, type Sha256Digest } from "../../../core/oci/digest.ts";
import { parseManifest } from "../../../core/oci/manifest.ts";
import { MediaType } from "../../../core/oci/media-types.ts";
import { BUNDLE_MEDIA_TYPE, EMPTY_CONFIG } from "../../../core/sign/bundle.ts";
import type { SigningKey } from "../../../core/sign/ecdsa.ts";
import { signBundle, signSimple, type SignTarget } from "../../../core/sign/sign.ts";
import {
  signatureLayersOf,
  signatureManifest,
  signatureTag,
  SIMPLE_SIGNING_MEDIA_TYPE,
  type SignatureLayer,
} from "../../../core/sign/simple-signing.ts";
import { checkSignature, findSignatures, SIGNATURE_BLOB_MAX, type SignatureStore } from "../../../core/sign/verify.ts";
import type { RegistryClient } from "../registry/client.ts";
import type { BlobSource } from "../registry/image.ts";

/** Targets signed at once. */
const CONCURRENCY = 4;
/** A `.sig` manifest rewritten by another signer between our read and our write loses our layer: write again. */
const APPEND_ATTEMPTS = 3;

export function registrySignatureStore(client: RegistryClient, repo: string): SignatureStore {
  return {
    manifestByTag: async (tag) => (await client.findManifest(repo, tag))?.bytes ?? null,
    manifestByDigest: async (digest) => (await client.findManifest(repo, digest))?.bytes ?? null,
    blob: async (digest) => {
      const size = await client.blobSize(repo, digest);
      if (size === undefined || size > SIGNATURE_BLOB_MAX) return null;
      return new Uint8Array(await new Response(await client.openBlob(repo, digest)).arrayBuffer());
    },
    referrers: (digest, artifactType) => client.referrers(repo, digest, artifactType),
  };
}

export interface SignOutcome {
  identity: string;
  digest: string;
  /** Per format: written now, or already there (same key, same claim). */
  simpleSigning: "written" | "present";
  bundle: "written" | "present";
}

/**
 * Signs every target in both formats. Targets of one digest (a partition that two labels name)
 * share its `.sig` manifest, so they are appended in one write, and one bundle: a bundle names
 * the digest alone.
 */
export async function writeSignatures(
  client: RegistryClient,
  repo: string,
  key: SigningKey,
  targets: readonly SignTarget[],
): Promise<SignOutcome[]> {
  const store = registrySignatureStore(client, repo);
  const limit = pLimit(CONCURRENCY);
  const byDigest = new Map<string, SignTarget[]>();
  for (const t of targets) {
    const group = byDigest.get(t.subject.digest) ?? [];
    if (!group.some((g) => g.identity === t.identity)) group.push(t);
    byDigest.set(t.subject.digest, group);
  }
  const outcomes = await Promise.all(
    [...byDigest.values()].map((group) =>
      limit(async (): Promise<SignOutcome[]> => {
        const simple = await appendSimpleSignatures(client, repo, store, key, group);
        const bundle = await pushBundle(client, repo, store, key, group[0]!);
        return group.map((t, i) => ({
          identity: t.identity,
          digest: t.subject.digest,
          simpleSigning: simple[i]!,
          bundle,
        }));
      }),
    ),
  );
  return outcomes.flat();
}

/** Appends a layer per target that the `.sig` manifest lacks; another signer's layers stay. */
async function appendSimpleSignatures(
  client: RegistryClient,
  repo: string,
  store: SignatureStore,
  key: SigningKey,
  group: readonly SignTarget[],
): Promise<("written" | "present")[]> {
  const digest = group[0]!.subject.digest as Sha256Digest;
  const tag = signatureTag(digest);
  const ours = await Promise.all(group.map((t) => signSimple(key, t)));
  for (let attempt = 1; ; attempt++) {
    const existing = await existingLayers(store, tag);
    const present = await Promise.all(ours.map((o) => signedAlready(existing, o.payload, key, digest)));
    const missing = ours.filter((_, i) => !present[i]);
    if (missing.length === 0) return present.map(() => "present");
    const sig = await signatureManifest([...existing, ...missing.map((m) => m.layer)]);
    await client.pushImage(repo, {
      tag,
      blobs: [
        bytesBlob(sig.configDigest, sig.config, MediaType.OciConfig),
        ...missing.map((m) => bytesBlob(m.layer.digest, m.payload, SIMPLE_SIGNING_MEDIA_TYPE)),
      ],
      manifests: [{ digest: sig.digest, mediaType: MediaType.OciManifest, bytes: sig.manifest }],
    });
    const now = await existingLayers(store, tag);
    const landed = (m: (typeof ours)[number]): boolean =>
      now.some((l) => l.digest === m.layer.digest && l.signature === m.layer.signature);
    if (missing.every(landed)) return present.map((p) => (p ? "present" : "written"));
    if (attempt >= APPEND_ATTEMPTS) {
      throw new Error(`${repo}:${tag} was rewritten by another signer ${attempt} times while signing; try again`);
    }
  }
}

async function existingLayers(store: SignatureStore, tag: string): Promise<SignatureLayer[]> {
  const bytes = await store.manifestByTag(tag);
  if (!bytes) return [];
  const parsed = parseManifest(bytes, null);
  if (parsed.kind !== "manifest") throw new Error(`the signature tag ${tag} names an index, not a signature manifest`);
  return signatureLayersOf(parsed.manifest.layers);
}

/** Whether a layer already carries this payload, signed by this key. */
async function signedAlready(
  layers: readonly SignatureLayer[],
  payload: Uint8Array,
  key: SigningKey,
  digest: Digest,
): Promise<boolean> {
  const payloadDigest = await sha256(payload);
  for (const l of layers.filter((x) => x.digest === payloadDigest)) {
    const signature = fromBase64(l.signature);
    const check = await checkSignature({ format: "simple-signing", payload, signature, layer: l.digest }, digest, [
      key.publicKey,
    ]);
    if (check.ok) return true;
  }
  return false;
}

async function pushBundle(
  client: RegistryClient,
  repo: string,
  store: SignatureStore,
  key: SigningKey,
  target: SignTarget,
): Promise<"written" | "present"> {
  const digest = target.subject.digest as Sha256Digest;
  const existing = (await findSignatures(store, digest)).filter((f) => f.format === "bundle");
  for (const f of existing) {
    const check = await checkSignature(f, digest, [key.publicKey]);
    if (
      check.ok &&
      sameClaims(check.statement?.subjects.find((s) => s.digest === digest)?.annotations, target.claims)
    ) {
      return "present";
    }
  }
  const { bundle, referrer } = await signBundle(key, target, { created: new Date() });
  await client.pushImage(repo, {
    blobs: [
      bytesBlob(referrer.configDigest, EMPTY_CONFIG, MediaType.OciEmpty),
      bytesBlob(referrer.bundleDigest, bundle, BUNDLE_MEDIA_TYPE),
    ],
    manifests: [{ digest: referrer.digest, mediaType: MediaType.OciManifest, bytes: referrer.manifest }],
  });
  return "written";
}

function sameClaims(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const x = Object.entries(a ?? {}).sort();
  const y = Object.entries(b ?? {}).sort();
  return JSON.stringify(x) === JSON.stringify(y);
}

function bytesBlob(digest: string, bytes: Uint8Array, mediaType: string): BlobSource {
  return { digest, size: bytes.length, mediaType, open: () => new Response(bytes).body! };
}
