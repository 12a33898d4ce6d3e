/**
 * cosign's first signature format, which cosign v2, podman, CRI-O and every containers/image
 * `sigstoreSigned` policy read: the "simple signing" payload, signed with ECDSA, stored as a layer
 * of an image manifest tagged `sha256-<hex>.sig` in the signed image's repository, the signature
 * in the layer's annotation `dev.cosignproject.cosign/signature` (docs/signing.md). A second
 * signer appends a layer to the same manifest.
 */
import { tryParseJson } from "../oci/json.ts";
import { sha256, type Digest, type Sha256Digest } from "../oci/digest.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { MediaType } from "../oci/media-types.ts";
import { goJson, sortedMap } from "./go-json.ts";

export const SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json";
export const SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature";
export const COSIGN_SIGNATURE_TYPE = "cosign container image signature";

const SIG_TAG_RE = /^sha256-([a-f0-9]{64})\.sig$/;

/** The tag that holds the signatures of `digest`: `sha256-<hex>.sig`. */
export function signatureTag(digest: Sha256Digest): string {
  return `sha256-${digest.slice(7)}.sig`;
}

/** The digest a `sha256-<hex>.sig` tag holds signatures of, or undefined for any other tag. */
export function signedDigestOfTag(tag: string): Sha256Digest | undefined {
  const m = SIG_TAG_RE.exec(tag);
  return m ? `sha256:${m[1]}` : undefined;
}

export interface SimpleSigningPayload {
  /** The identity claimed: `host/repository[:tag]`. */
  dockerReference: string;
  digest: Digest;
  /** Free-form claims (cosign's `-a key=value`). */
  optional: Record<string, string> | null;
}

/** The payload bytes, as cosign writes them (Go's encoding/json, `optional` null when empty). */
export function simpleSigningPayload(p: SimpleSigningPayload): Uint8Array {
  const optional = p.optional && Object.keys(p.optional).length > 0 ? sortedMap(p.optional) : null;
  return new TextEncoder().encode(
    goJson({
      critical: {
        identity: { "docker-reference": p.dockerReference },
        image: { "docker-manifest-digest": p.digest },
        type: COSIGN_SIGNATURE_TYPE,
      },
      optional,
    }),
  );
}

/** Reads a payload someone signed; undefined for anything that is not a cosign image signature. */
export function parseSimpleSigningPayload(bytes: Uint8Array): SimpleSigningPayload | undefined {
  const json = tryParseJson(bytes);
  if (json === undefined) return undefined;
  const critical = (json as { critical?: Record<string, unknown> })?.critical;
  const reference = (critical?.identity as Record<string, unknown> | undefined)?.["docker-reference"];
  // containers/image reads the key in any case; cosign writes it lowercase.
  const image = critical?.image as Record<string, unknown> | undefined;
  const digest = image?.["docker-manifest-digest"] ?? image?.["Docker-manifest-digest"];
  if (critical?.type !== COSIGN_SIGNATURE_TYPE || typeof reference !== "string" || typeof digest !== "string") {
    return undefined;
  }
  const opt = (json as { optional?: unknown }).optional;
  const optional =
    opt && typeof opt === "object" && !Array.isArray(opt)
      ? Object.fromEntries(Object.entries(opt).filter((e): e is [string, string] => typeof e[1] === "string"))
      : null;
  return { dockerReference: reference, digest: digest as Digest, optional };
}

/** One signature layer of a `.sig` manifest. */
export interface SignatureLayer {
  digest: Digest;
  size: number;
  /** base64 DER. */
  signature: string;
  /** Any other annotations the layer carries (certificates, bundles), kept as they were. */
  annotations?: Record<string, string>;
}

/**
 * The config of a `.sig` manifest: an empty image whose rootfs lists the payloads, the way
 * go-containerregistry's empty image with layers appended marshals it.
 */
export function signatureConfig(layers: readonly Pick<SignatureLayer, "digest">[]): Uint8Array {
  return new TextEncoder().encode(
    goJson({
      architecture: "",
      created: "0001-01-01T00:00:00Z",
      history: layers.map(() => ({ created: "0001-01-01T00:00:00Z" })),
      os: "",
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
  );
}

/** The `.sig` manifest for these layers, with the config they make (both content-addressed). */
export async function signatureManifest(
  layers: readonly SignatureLayer[],
): Promise<{ manifest: Uint8Array; digest: Sha256Digest; config: Uint8Array; configDigest: Sha256Digest }> {
  const config = signatureConfig(layers);
  const configDigest = await sha256(config);
  const manifest = new TextEncoder().encode(
    goJson({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, size: config.length, digest: configDigest },
      layers: layers.map((l) => ({
        mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
        size: l.size,
        digest: l.digest,
        annotations: sortedMap({ ...l.annotations, [SIGNATURE_ANNOTATION]: l.signature }),
      })),
    }),
  );
  return { manifest, digest: await sha256(manifest), config, configDigest };
}

/** The signature layers of a `.sig` manifest's layers (other layers are not signatures and are skipped). */
export function signatureLayersOf(layers: readonly Descriptor[]): SignatureLayer[] {
  return layers.flatMap((l) => {
    const signature = l.annotations?.[SIGNATURE_ANNOTATION];
    if (l.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE || !signature) return [];
    const { [SIGNATURE_ANNOTATION]: _sig, ...annotations } = l.annotations ?? {};
    return [{ digest: l.digest, size: l.size, signature, ...(Object.keys(annotations).length ? { annotations } : {}) }];
  });
}
