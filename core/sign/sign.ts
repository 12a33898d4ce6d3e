/**
 * Signing one manifest in both formats: the simple-signing payload for its `.sig` manifest and a
 * Sigstore bundle for a referrer. The same code signs for the CLI (the image owner's key) and for
 * the Worker (the registry's key, docs/signing.md).
 */
import { toBase64 } from "../encoding/base64.ts";
import { sha256, type Digest } from "../oci/digest.ts";
import type { Descriptor } from "../oci/manifest.ts";
import {
  bundleBytes,
  bundleReferrer,
  COSIGN_SIGN_PREDICATE,
  INTOTO_PAYLOAD_TYPE,
  pae,
  statementBytes,
} from "./bundle.ts";
import { sign, type SigningKey } from "./ecdsa.ts";
import { simpleSigningPayload, type SignatureLayer } from "./simple-signing.ts";

/** What is signed: a manifest, and the reference it is signed for. */
export interface SignTarget {
  /** The docker reference the signature claims (`host/repo:tag`). */
  identity: string;
  subject: Pick<Descriptor, "mediaType" | "digest" | "size">;
  /** Claims beyond the digest: simple signing's `optional`, the statement subject's annotations. */
  claims?: Record<string, string>;
}

export interface SimpleSignature {
  payload: Uint8Array;
  layer: SignatureLayer;
}

export interface BundleSignature {
  bundle: Uint8Array;
  referrer: Awaited<ReturnType<typeof bundleReferrer>>;
}

export async function signSimple(key: SigningKey, target: SignTarget): Promise<SimpleSignature> {
  const payload = simpleSigningPayload({
    dockerReference: target.identity,
    digest: target.subject.digest,
    optional: target.claims ?? null,
  });
  const signature = toBase64(await sign(key, payload));
  return { payload, layer: { digest: await sha256(payload), size: payload.length, signature } };
}

/**
 * A bundle whose statement names the subject's digest, with `predicateType` (a plain signature by
 * default) and its predicate, in the referrer manifest that carries it.
 */
export async function signBundle(
  key: SigningKey,
  target: SignTarget,
  opts: { created: Date; predicateType?: string; predicate?: Record<string, unknown> },
): Promise<BundleSignature> {
  const predicateType = opts.predicateType ?? COSIGN_SIGN_PREDICATE;
  const statement = statementBytes({
    subjects: [{ digest: target.subject.digest as Digest, ...(target.claims ? { annotations: target.claims } : {}) }],
    predicateType,
    predicate: opts.predicate ?? {},
  });
  const signature = await sign(key, pae(INTOTO_PAYLOAD_TYPE, statement));
  const bundle = bundleBytes(statement, signature, key.publicKey.hint);
  const referrer = await bundleReferrer({
    subject: target.subject,
    bundle,
    predicateType,
    created: opts.created.toISOString().replace(/\.\d{3}Z$/, "Z"),
  });
  return { bundle, referrer };
}
