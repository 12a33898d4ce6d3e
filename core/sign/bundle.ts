/**
 * cosign v3's signature format: a Sigstore bundle (v0.3) holding a DSSE envelope around an
 * in-toto statement that names the signed digest, pushed as an OCI 1.1 artifact whose `subject`
 * is the signed manifest, so `GET /v2/<name>/referrers/<digest>` finds it (docs/signing.md).
 * Signed with a key and no transparency log, the bundle's verification material is the key's
 * hint alone, which is what `cosign sign --key ... --tlog-upload=false` writes.
 */
import { tryParseJson } from "../oci/json.ts";
import { fromBase64, toBase64 } from "../encoding/base64.ts";
import { isDigest, sha256, type Digest } from "../oci/digest.ts";
import type { Descriptor } from "../oci/manifest.ts";
import { MediaType } from "../oci/media-types.ts";

export const BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";
export const INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";
export const INTOTO_STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
/** The predicate of a plain image signature in cosign v3. */
export const COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1";
/** Annotations cosign puts on the referrer manifest of a bundle. */
export const BUNDLE_CONTENT_ANNOTATION = "dev.sigstore.bundle.content";
export const BUNDLE_PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType";
export const CREATED_ANNOTATION = "org.opencontainers.image.created";
/** The config of every referrer cosign pushes: the two bytes `{}`. */
export const EMPTY_CONFIG = new TextEncoder().encode("{}");

export interface Statement {
  subjects: { digest: Digest; annotations?: Record<string, string> }[];
  predicateType: string;
  predicate: Record<string, unknown>;
}

/** An in-toto statement's bytes, with the fields in the order cosign writes them. */
export function statementBytes(s: Statement): Uint8Array {
  const subject = s.subjects.map((x) => {
    const [alg, hex] = x.digest.split(":") as [string, string];
    return {
      digest: { [alg]: hex },
      ...(x.annotations && Object.keys(x.annotations).length ? { annotations: x.annotations } : {}),
    };
  });
  return new TextEncoder().encode(
    JSON.stringify({ _type: INTOTO_STATEMENT_TYPE, subject, predicateType: s.predicateType, predicate: s.predicate }),
  );
}

/** A statement someone signed; undefined when it is not an in-toto v1 statement with digests. */
export function parseStatement(bytes: Uint8Array): Statement | undefined {
  const json = tryParseJson(bytes);
  if (json === undefined) return undefined;
  const o = json as { _type?: unknown; subject?: unknown; predicateType?: unknown; predicate?: unknown };
  if (o?._type !== INTOTO_STATEMENT_TYPE || !Array.isArray(o.subject) || typeof o.predicateType !== "string") {
    return undefined;
  }
  const subjects: Statement["subjects"] = [];
  for (const s of o.subject as { digest?: Record<string, unknown>; annotations?: Record<string, unknown> }[]) {
    for (const [alg, hex] of Object.entries(s?.digest ?? {})) {
      const digest = `${alg}:${String(hex)}`;
      if (!isDigest(digest)) continue;
      const annotations = Object.fromEntries(
        Object.entries(s.annotations ?? {}).filter((e): e is [string, string] => typeof e[1] === "string"),
      );
      subjects.push({ digest, ...(Object.keys(annotations).length ? { annotations } : {}) });
    }
  }
  const predicate =
    o.predicate && typeof o.predicate === "object" && !Array.isArray(o.predicate)
      ? (o.predicate as Record<string, unknown>)
      : {};
  return { subjects, predicateType: o.predicateType, predicate };
}

/** DSSE's pre-authentication encoding: what is signed, never the payload alone. */
export function pae(payloadType: string, payload: Uint8Array): Uint8Array {
  const type = new TextEncoder().encode(payloadType);
  const head = new TextEncoder().encode(`DSSEv1 ${type.length} ${payloadType} ${payload.length} `);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

export interface Bundle {
  payloadType: string;
  payload: Uint8Array;
  /** DER signatures. */
  signatures: Uint8Array[];
  /** The key hint of the verification material, when the bundle names a key rather than a certificate. */
  hint?: string;
}

/** The bundle JSON for a statement signed with a key (no certificate, no log entry). */
export function bundleBytes(payload: Uint8Array, signature: Uint8Array, hint: string): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      mediaType: BUNDLE_MEDIA_TYPE,
      verificationMaterial: { publicKey: { hint }, tlogEntries: [] },
      dsseEnvelope: {
        payload: toBase64(payload),
        payloadType: INTOTO_PAYLOAD_TYPE,
        signatures: [{ sig: toBase64(signature) }],
      },
    }),
  );
}

/** Reads a bundle that holds a DSSE envelope; undefined for anything else. */
export function parseBundle(bytes: Uint8Array): Bundle | undefined {
  const json = tryParseJson(bytes);
  if (json === undefined) return undefined;
  const o = json as {
    mediaType?: unknown;
    verificationMaterial?: { publicKey?: { hint?: unknown } };
    dsseEnvelope?: { payload?: unknown; payloadType?: unknown; signatures?: unknown };
  };
  const env = o?.dsseEnvelope;
  if (typeof o?.mediaType !== "string" || !o.mediaType.startsWith("application/vnd.dev.sigstore.bundle"))
    return undefined;
  if (typeof env?.payload !== "string" || typeof env.payloadType !== "string" || !Array.isArray(env.signatures)) {
    return undefined;
  }
  const payload = fromBase64(env.payload);
  if (!payload) return undefined;
  const signatures = (env.signatures as { sig?: unknown }[]).flatMap((s) => {
    const der = typeof s?.sig === "string" ? fromBase64(s.sig) : undefined;
    return der ? [der] : [];
  });
  const hint = o.verificationMaterial?.publicKey?.hint;
  return { payloadType: env.payloadType, payload, signatures, ...(typeof hint === "string" ? { hint } : {}) };
}

/**
 * The referrer manifest that carries a bundle, as cosign v3 pushes it: an OCI image manifest with
 * the empty config, the bundle as its one layer, the signed manifest as its subject.
 */
export async function bundleReferrer(opts: {
  subject: Pick<Descriptor, "mediaType" | "digest" | "size">;
  bundle: Uint8Array;
  predicateType: string;
  created: string;
}): Promise<{ manifest: Uint8Array; digest: Digest; bundleDigest: Digest; configDigest: Digest }> {
  const [bundleDigest, configDigest] = await Promise.all([sha256(opts.bundle), sha256(EMPTY_CONFIG)]);
  const manifest = new TextEncoder().encode(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      artifactType: BUNDLE_MEDIA_TYPE,
      config: { mediaType: MediaType.OciEmpty, size: EMPTY_CONFIG.length, digest: configDigest },
      layers: [{ mediaType: BUNDLE_MEDIA_TYPE, size: opts.bundle.length, digest: bundleDigest }],
      subject: { mediaType: opts.subject.mediaType, size: opts.subject.size, digest: opts.subject.digest },
      annotations: {
        [BUNDLE_CONTENT_ANNOTATION]: "dsse-envelope",
        [BUNDLE_PREDICATE_ANNOTATION]: opts.predicateType,
        [CREATED_ANNOTATION]: opts.created,
      },
    }),
  );
  return { manifest, digest: await sha256(manifest), bundleDigest, configDigest };
}
