/**
 * The registry as a signer (worker/signing/), in workerd: off without its secrets; with them, it
 * signs a partition of an image a trusted key signed (index and platform manifests, claims naming
 * source, selection and signer), signs nothing for an image no trusted key signed, and answers a
 * broken setting with 503 on exactly the requests that need it.
 */
import { scrypt } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import type { Digest, Sha256Digest } from "../../core/oci/digest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { BUNDLE_MEDIA_TYPE } from "../../core/sign/bundle.ts";
import { generateKeyPair, importPrivateKey, publicKeyPem, type SigningKey } from "../../core/sign/ecdsa.ts";
import { encryptPrivateKey, type Scrypt } from "../../core/sign/key-file.ts";
import { encodePem } from "../../core/sign/pem.ts";
import { signSimple } from "../../core/sign/sign.ts";
import { signatureManifest, signatureTag } from "../../core/sign/simple-signing.ts";
import { checkSignature, findSignatures, type SignatureStore } from "../../core/sign/verify.ts";
import { anImage } from "../helpers/images/builder.ts";
import type { BuiltImage } from "../helpers/images/types.ts";
import { workerWith, type Call } from "./auth-support.ts";
import { registry as registryApi, worker } from "./helpers/registry.ts";

const ACCEPT = [MediaType.OciIndex, MediaType.OciManifest].join(", ");
/** A 2x2 field over two base layers: gzip, plain tar and zstd allotments. */
function pushImage(repo: string): Promise<BuiltImage> {
  return anImage()
    .randomLayers(2, 4096)
    .grid(2, 2)
    .allotment(0, 1, { compression: "none" })
    .allotment(1, 1, { compression: "zstd" })
    .pushTo(worker, repo, "v1");
}

const workerdScrypt: Scrypt = (passphrase, salt, params, length) =>
  new Promise((resolve, reject) =>
    scrypt(passphrase, salt, length, { ...params, maxmem: 256 * 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(new Uint8Array(key)),
    ),
  );

async function newKey(): Promise<{ key: SigningKey; pkcs8: Uint8Array }> {
  const { pkcs8 } = await generateKeyPair();
  return { key: await importPrivateKey(pkcs8), pkcs8 };
}

/** Signs `digest` in `repo` as `2dfs-push sign` would, in the simple-signing format. */
async function ownerSigns(call: Call, repo: string, key: SigningKey, digest: string): Promise<void> {
  const subject = { mediaType: MediaType.OciIndex, digest: digest as Digest, size: 1 };
  const simple = await signSimple(key, { identity: `registry.test/${repo}:v1`, subject });
  const sig = await signatureManifest([simple.layer]);
  await registryApi.pushBlob(repo, simple.payload);
  await registryApi.pushBlob(repo, sig.config);
  const res = await call(`/v2/${repo}/manifests/${signatureTag(digest as Sha256Digest)}`, {
    method: "PUT",
    headers: { "Content-Type": MediaType.OciManifest },
    body: sig.manifest,
  });
  expect(res.status).toBe(201);
}

/** What the registry serves, as core's verifier reads signatures. */
function served(call: Call, repo: string): SignatureStore {
  const get = async (path: string): Promise<Uint8Array | null> => {
    const res = await call(path, { headers: { Accept: ACCEPT } });
    if (res.status === 404) return null;
    expect(res.status).toBe(200);
    return new Uint8Array(await res.arrayBuffer());
  };
  return {
    manifestByTag: (tag) => get(`/v2/${repo}/manifests/${tag}`),
    manifestByDigest: (digest) => get(`/v2/${repo}/manifests/${digest}`),
    blob: (digest) => get(`/v2/${repo}/blobs/${digest}`),
    referrers: async (digest, artifactType) => {
      const res = await call(`/v2/${repo}/referrers/${digest}?artifactType=${encodeURIComponent(artifactType)}`);
      expect(res.status).toBe(200);
      return ((await res.json()) as { manifests: [] }).manifests;
    },
  };
}

async function partitionOf(call: Call, repo: string, tag: string): Promise<{ digest: Digest; children: Digest[] }> {
  const res = await call(`/v2/${repo}/manifests/${tag}`, { headers: { Accept: ACCEPT } });
  expect(res.status).toBe(200);
  const index = (await res.json()) as { manifests: { digest: Digest }[] };
  return { digest: res.headers.get("docker-content-digest") as Digest, children: index.manifests.map((m) => m.digest) };
}

describe("the registry's partition signer", () => {
  let owner: SigningKey;
  let registry: { key: SigningKey; pkcs8: Uint8Array };
  let trusted: BuiltImage;
  let untrusted: BuiltImage;
  let on: Call;

  beforeAll(async () => {
    owner = (await newKey()).key;
    registry = await newKey();
    trusted = await pushImage("sign/trusted");
    untrusted = await pushImage("sign/untrusted");
    on = workerWith({
      PARTITION_SIGNING_KEY: await encryptPrivateKey(registry.pkcs8, "registry passphrase", workerdScrypt),
      PARTITION_SIGNING_KEY_PASSPHRASE: "registry passphrase",
      PARTITION_TRUSTED_KEYS: publicKeyPem(owner.publicKey),
    });
    await ownerSigns(on, "sign/trusted", owner, trusted.digest);
    await ownerSigns(on, "sign/untrusted", (await newKey()).key, untrusted.digest);
  });

  it("signs a partition of a trusted image, its index and its platform manifest, claiming source and selection", async () => {
    const part = await partitionOf(on, "sign/trusted", "v1--0.0.0.1");
    const store = served(on, "sign/trusted");
    for (const digest of [part.digest, ...part.children]) {
      const found = await findSignatures(store, digest as Sha256Digest);
      expect(found.map((f) => f.format).sort()).toEqual(["bundle", "bundle", "simple-signing"]);
      for (const f of found) {
        const check = await checkSignature(f, digest, [registry.key.publicKey], {
          repository: "registry.test/sign/trusted",
        });
        expect(check).toMatchObject({
          ok: true,
          claims: { source: trusted.digest, selection: "0.0.0.1", sourceSigner: owner.publicKey.fingerprint },
        });
        if (digest !== part.digest && check.ok)
          expect(check.claims?.manifest).toBe(trusted.platforms[0]!.manifest.digest);
      }
    }
    // Remembered: the same answer again.
    const again = await on(`/v2/sign/trusted/manifests/${signatureTag(part.digest as Sha256Digest)}`, {
      headers: { Accept: ACCEPT },
    });
    const first = await store.manifestByTag(signatureTag(part.digest as Sha256Digest));
    expect(new Uint8Array(await again.arrayBuffer())).toEqual(first);
  });

  it("does not sign its own signatures", async () => {
    const part = await partitionOf(on, "sign/trusted", "v1--1.1.1.1");
    const store = served(on, "sign/trusted");
    const [bundle] = await store.referrers(part.digest, BUNDLE_MEDIA_TYPE);
    const sigRes = await on(`/v2/sign/trusted/manifests/${signatureTag(part.digest as Sha256Digest)}`, {
      method: "HEAD",
      headers: { Accept: ACCEPT },
    });
    for (const own of [bundle!.digest, sigRes.headers.get("docker-content-digest") as Digest]) {
      expect(await findSignatures(store, own as Sha256Digest)).toEqual([]);
    }
  });

  it("signs nothing for a pushed manifest, nor for a partition of an image no trusted key signed", async () => {
    const store = served(on, "sign/untrusted");
    const part = await partitionOf(on, "sign/untrusted", "v1--0.0.0.1");
    expect(await findSignatures(store, part.digest as Sha256Digest)).toEqual([]);
    expect((await on(`/v2/sign/untrusted/manifests/${signatureTag(part.digest as Sha256Digest)}`)).status).toBe(404);
    const referrers = await served(on, "sign/trusted").referrers(trusted.digest as Digest, BUNDLE_MEDIA_TYPE);
    expect(referrers).toEqual([]);
  });

  it("is off without its secrets", async () => {
    const off = workerWith({});
    const part = await partitionOf(off, "sign/trusted", "v1--1.0.1.1");
    expect(await findSignatures(served(off, "sign/trusted"), part.digest as Sha256Digest)).toEqual([]);
  });

  it.each([
    [
      "only the key",
      async () => ({ PARTITION_SIGNING_KEY: encodePem("PRIVATE KEY", registry.pkcs8) }),
      /PARTITION_TRUSTED_KEYS is not/,
    ],
    [
      "only the trusted keys",
      async () => ({ PARTITION_TRUSTED_KEYS: publicKeyPem(owner.publicKey) }),
      /PARTITION_SIGNING_KEY is not/,
    ],
    [
      "a wrong passphrase",
      async () => ({
        PARTITION_SIGNING_KEY: await encryptPrivateKey(registry.pkcs8, "right", workerdScrypt),
        PARTITION_SIGNING_KEY_PASSPHRASE: "wrong",
        PARTITION_TRUSTED_KEYS: publicKeyPem(owner.publicKey),
      }),
      /wrong passphrase/,
    ],
    [
      "a public key as the signing key",
      async () => ({
        PARTITION_SIGNING_KEY: publicKeyPem(owner.publicKey),
        PARTITION_TRUSTED_KEYS: publicKeyPem(owner.publicKey),
      }),
      /is a public key/,
    ],
  ])(
    "with %s, answers the signatures of a partition 503 UNAVAILABLE and everything else as usual",
    async (_what, vars, message) => {
      const broken = workerWith(await vars());
      const part = await partitionOf(broken, "sign/trusted", "v1--1.1.1.1");
      for (const path of [
        `/v2/sign/trusted/referrers/${part.digest}`,
        `/v2/sign/trusted/manifests/${signatureTag(part.digest as Sha256Digest)}`,
      ]) {
        const res = await broken(path, { headers: { Accept: ACCEPT } });
        expect(res.status).toBe(503);
        const body = (await res.json()) as { errors: { code: string; message: string }[] };
        expect(body.errors[0]!.code).toBe("UNAVAILABLE");
        expect(body.errors[0]!.message).toMatch(/^partition signing is misconfigured: /);
        expect(body.errors[0]!.message).toMatch(message);
      }
      expect((await broken(`/v2/sign/trusted/referrers/${trusted.digest}`)).status).toBe(200);
      expect((await broken(`/v2/sign/trusted/manifests/v1`, { headers: { Accept: ACCEPT } })).status).toBe(200);
    },
  );
});
