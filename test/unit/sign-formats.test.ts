/**
 * The two signature formats, checked against what reads them elsewhere: node:crypto for the
 * ECDSA signatures of simple signing, and Sigstore's own verifier (@sigstore/verify) for the
 * bundles, with the public key and no transparency log.
 */
import { bundleFromJSON } from "@sigstore/bundle";
import { toSignedEntity } from "@sigstore/verify";
import { createHash, createPublicKey, createSign, createVerify, generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Sha256Digest } from "../../core/oci/digest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { COSIGN_SIGN_PREDICATE, pae, parseBundle, statementBytes } from "../../core/sign/bundle.ts";
import {
  derToRaw,
  generateKeyPair,
  importPrivateKey,
  importPublicKey,
  rawToDer,
  sign,
  verify,
  type SigningKey,
} from "../../core/sign/ecdsa.ts";
import { identityMatches } from "../../core/sign/identity.ts";
import { signBundle, signSimple } from "../../core/sign/sign.ts";
import {
  parseSimpleSigningPayload,
  signatureManifest,
  signatureTag,
  signedDigestOfTag,
  simpleSigningPayload,
} from "../../core/sign/simple-signing.ts";
import { checkSignature, type Found } from "../../core/sign/verify.ts";
import { sigstoreVerifier } from "../helpers/fleet-verifier.ts";

const DIGEST = `sha256:${"ab".repeat(32)}` as Sha256Digest;
const OTHER = `sha256:${"cd".repeat(32)}` as Sha256Digest;
const SUBJECT = { mediaType: MediaType.OciIndex, digest: DIGEST, size: 321 };

async function newKey(): Promise<SigningKey> {
  return importPrivateKey((await generateKeyPair()).pkcs8);
}

/** Sigstore's verifier (test/helpers/fleet-verifier.ts) for bundles, trusting `key`'s public key. */
function sigstoreVerify(bundleBytes: Uint8Array, key: SigningKey): void {
  const publicKey = createPublicKey({ key: Buffer.from(key.publicKey.spki), format: "der", type: "spki" });
  sigstoreVerifier(publicKey).verify(toSignedEntity(bundleFromJSON(JSON.parse(new TextDecoder().decode(bundleBytes)))));
}

describe("ECDSA P-256 signatures", () => {
  it("signs DER that node:crypto verifies, and verifies DER that node:crypto signs", async () => {
    const key = await newKey();
    const data = new TextEncoder().encode("payload");
    const ours = await sign(key, data);
    const pub = createPublicKey({ key: Buffer.from(key.publicKey.spki), format: "der", type: "spki" });
    expect(createVerify("sha256").update(data).verify(pub, Buffer.from(ours))).toBe(true);

    const node = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const theirs = createSign("sha256").update(data).sign(node.privateKey);
    const theirKey = await importPublicKey(node.publicKey.export({ format: "der", type: "spki" }));
    expect(await verify(theirKey, data, theirs)).toBe(true);
    expect(await verify(theirKey, new TextEncoder().encode("other"), theirs)).toBe(false);
  });

  it("converts r||s to minimal DER and back, leading zeros and high bits included", () => {
    for (const raw of [
      new Uint8Array(64).fill(0xff),
      Uint8Array.from({ length: 64 }, (_, i) => (i < 31 || (i >= 32 && i < 60) ? 0 : 1)),
      Uint8Array.from({ length: 64 }, (_, i) => (i * 37) & 0xff),
    ]) {
      const der = rawToDer(raw);
      expect(derToRaw(der)).toEqual(raw);
    }
    // A positive INTEGER whose first byte has the high bit gets a zero byte before it.
    expect([...rawToDer(new Uint8Array(64).fill(0x80)).subarray(2, 6)]).toEqual([0x02, 33, 0x00, 0x80]);
  });

  it.each([
    ["empty", []],
    ["a SEQUENCE whose length lies", [0x30, 0x10, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]],
    ["a non-minimal INTEGER", [0x30, 0x08, 0x02, 0x02, 0x00, 0x01, 0x02, 0x02, 0x00, 0x01]],
    ["a negative INTEGER", [0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01]],
    ["trailing bytes", [0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00]],
  ])("refuses a malformed DER signature: %s", (_what, bytes) => {
    expect(derToRaw(Uint8Array.from(bytes))).toBeUndefined();
  });
});

describe("simple signing (cosign v2, containers/image)", () => {
  it("writes the payload cosign writes, byte for byte", () => {
    const bytes = simpleSigningPayload({
      dockerReference: "127.0.0.1:8787/ml/model:v1--jetson",
      digest: DIGEST,
      optional: null,
    });
    expect(new TextDecoder().decode(bytes)).toBe(
      `{"critical":{"identity":{"docker-reference":"127.0.0.1:8787/ml/model:v1--jetson"},` +
        `"image":{"docker-manifest-digest":"${DIGEST}"},"type":"cosign container image signature"},"optional":null}`,
    );
    const withClaims = simpleSigningPayload({ dockerReference: "r", digest: DIGEST, optional: { b: "<2>", a: "1" } });
    expect(new TextDecoder().decode(withClaims)).toContain(`"optional":{"a":"1","b":"\\u003c2\\u003e"}`);
    expect(parseSimpleSigningPayload(withClaims)).toEqual({
      dockerReference: "r",
      digest: DIGEST,
      optional: { a: "1", b: "<2>" },
    });
  });

  it("names the tag sha256-<hex>.sig and reads it back", () => {
    expect(signatureTag(DIGEST)).toBe(`sha256-${"ab".repeat(32)}.sig`);
    expect(signedDigestOfTag(signatureTag(DIGEST))).toBe(DIGEST);
    expect(signedDigestOfTag("v1")).toBeUndefined();
  });

  it("lays out the .sig manifest as cosign documents: one simplesigning layer per signature, signature in its annotation", async () => {
    const key = await newKey();
    const a = await signSimple(key, { identity: "h/r:v1", subject: SUBJECT });
    const b = await signSimple(key, { identity: "h/r:v1--x", subject: SUBJECT });
    const sig = await signatureManifest([a.layer, b.layer]);
    const m = JSON.parse(new TextDecoder().decode(sig.manifest));
    expect(m.mediaType).toBe(MediaType.OciManifest);
    expect(m.config).toEqual({ mediaType: MediaType.OciConfig, size: sig.config.length, digest: sig.configDigest });
    expect(m.layers).toEqual(
      [a, b].map((s) => ({
        mediaType: "application/vnd.dev.cosign.simplesigning.v1+json",
        size: s.payload.length,
        digest: `sha256:${createHash("sha256").update(s.payload).digest("hex")}`,
        annotations: { "dev.cosignproject.cosign/signature": s.layer.signature },
      })),
    );
    const pub = createPublicKey({ key: Buffer.from(key.publicKey.spki), format: "der", type: "spki" });
    for (const s of [a, b]) {
      expect(createVerify("sha256").update(s.payload).verify(pub, Buffer.from(s.layer.signature, "base64"))).toBe(true);
    }
    expect(JSON.parse(new TextDecoder().decode(sig.config)).rootfs.diff_ids).toEqual([a.layer.digest, b.layer.digest]);
  });
});

describe("Sigstore bundles (cosign v3)", () => {
  it("are verified by Sigstore's verifier, and fail it when tampered or checked with another key", async () => {
    const key = await newKey();
    const { bundle, referrer } = await signBundle(
      key,
      { identity: "h/r:v1", subject: SUBJECT },
      { created: new Date() },
    );
    sigstoreVerify(bundle, key);

    const json = JSON.parse(new TextDecoder().decode(bundle));
    const statement = JSON.parse(Buffer.from(json.dsseEnvelope.payload, "base64").toString("utf8"));
    expect(statement).toEqual({
      _type: "https://in-toto.io/Statement/v1",
      subject: [{ digest: { sha256: "ab".repeat(32) } }],
      predicateType: COSIGN_SIGN_PREDICATE,
      predicate: {},
    });
    const tampered = structuredClone(json);
    tampered.dsseEnvelope.payload = Buffer.from(
      JSON.stringify({ ...statement, subject: [{ digest: { sha256: "cd".repeat(32) } }] }),
    ).toString("base64");
    expect(() => sigstoreVerify(new TextEncoder().encode(JSON.stringify(tampered)), key)).toThrow(/signature/i);
    const other = await newKey();
    expect(() => sigstoreVerify(bundle, other)).toThrow(/signature/i);

    const m = JSON.parse(new TextDecoder().decode(referrer.manifest));
    expect(m).toMatchObject({
      mediaType: MediaType.OciManifest,
      artifactType: "application/vnd.dev.sigstore.bundle.v0.3+json",
      config: { mediaType: "application/vnd.oci.empty.v1+json", size: 2 },
      layers: [{ mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json", size: bundle.length }],
      subject: SUBJECT,
      annotations: {
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": COSIGN_SIGN_PREDICATE,
      },
    });
  });
});

describe("checking a signature", () => {
  async function found(key: SigningKey, identity = "h/r:v1", digest = DIGEST): Promise<Found[]> {
    const subject = { ...SUBJECT, digest };
    const simple = await signSimple(key, { identity, subject });
    const { bundle } = await signBundle(key, { identity, subject }, { created: new Date() });
    return [
      {
        format: "simple-signing",
        payload: simple.payload,
        signature: Buffer.from(simple.layer.signature, "base64"),
        layer: simple.layer.digest,
      },
      { format: "bundle", bundle, referrer: OTHER, annotations: {} },
    ];
  }

  it("passes with the signer's key, naming the key", async () => {
    const key = await newKey();
    for (const f of await found(key)) {
      const c = await checkSignature(f, DIGEST, [key.publicKey], { repository: "h/r", tag: "v1" });
      expect(c).toMatchObject({ ok: true, key: { fingerprint: key.publicKey.fingerprint } });
    }
  });

  it("fails with another key, for another digest, and (simple signing) for another tag", async () => {
    const key = await newKey();
    const other = await newKey();
    for (const f of await found(key)) {
      expect(await checkSignature(f, DIGEST, [other.publicKey])).toMatchObject({ ok: false, reason: /no given key/ });
      expect(await checkSignature(f, OTHER, [key.publicKey])).toMatchObject({
        ok: false,
        reason: /names .*not sha256:cdcd/,
      });
    }
    const [simple] = await found(key, "h/r:v1--jetson");
    expect(await checkSignature(simple!, DIGEST, [key.publicKey], { repository: "h/r", tag: "v1--rpi" })).toMatchObject(
      {
        ok: false,
        reason: "the payload names h/r:v1--jetson",
      },
    );
  });

  it("fails a tampered signature and a bundle whose attestation is not a signature", async () => {
    const key = await newKey();
    const [simple, bundle] = await found(key);
    if (simple?.format !== "simple-signing" || bundle?.format !== "bundle") throw new Error("unreachable");
    const flipped = Uint8Array.from(simple.signature!);
    flipped[10]! ^= 1;
    expect(await checkSignature({ ...simple, signature: flipped }, DIGEST, [key.publicKey])).toMatchObject({
      ok: false,
    });

    const statement = statementBytes({
      subjects: [{ digest: DIGEST }],
      predicateType: "https://spdx.dev/Document",
      predicate: {},
    });
    const sig = await sign(key, pae("application/vnd.in-toto+json", statement));
    const json = JSON.parse(new TextDecoder().decode(bundle.bundle));
    json.dsseEnvelope.payload = Buffer.from(statement).toString("base64");
    json.dsseEnvelope.signatures = [{ sig: Buffer.from(sig).toString("base64") }];
    const sbom = new TextEncoder().encode(JSON.stringify(json));
    expect(parseBundle(sbom)).toBeDefined();
    expect(await checkSignature({ ...bundle, bundle: sbom }, DIGEST, [key.publicKey])).toMatchObject({
      ok: false,
      reason: /spdx.dev\/Document attestation, not a signature/,
    });
  });

  it("matches identities as containers/image's matchRepoDigestOrExact does", () => {
    expect(identityMatches("h:1/r:v1--a", { repository: "h:1/r", tag: "v1--a" })).toBe(true);
    expect(identityMatches("h:1/r:v1--a", { repository: "h:1/r", tag: "v1--b" })).toBe(false);
    expect(identityMatches("h:1/r", { repository: "h:1/r", tag: "v1" })).toBe(false);
    expect(identityMatches("h:1/r:v1", { repository: "h:1/r" })).toBe(true);
    expect(identityMatches("h:1/other:v1", { repository: "h:1/r" })).toBe(false);
  });
});
