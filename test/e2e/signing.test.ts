/**
 * Signed partitions, end to end: keys made by `2dfs-push key generate`, an image pushed with
 * `build --push --sign`, and the registry (`wrangler dev`, or `npm start`) configured to sign
 * partitions nobody pre-signed when their source is signed by a trusted key. Every signature is
 * checked as a fleet checks it (test/helpers/fleet-verifier.ts: Sigstore's own verifier for the
 * bundles, node:crypto for the simple-signing layers, containers/image's identity rules), and by
 * `2dfs-push verify`. containerd still pulls the partitions, file for file.
 */
import { createHash, createPrivateKey, createPublicKey, verify as nodeVerify } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { VerifyReport } from "../../builder-cli/src/sign/verify-image.ts";
import type { PushResult } from "../../builder-cli/src/cli/commands/push.ts";
import { startBrowser } from "../helpers/browser.ts";
import { startContainerd, type Containerd } from "../helpers/containerd.ts";
import { independentDecrypt } from "../helpers/cosign-key.ts";
import { fleetVerify, type FleetPolicy } from "../helpers/fleet-verifier.ts";
import { collectGarbage } from "../helpers/registry-http.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";
import { cliSandbox, type CliSandbox } from "./builder-cli.ts";
import { importPrivateKey } from "../../core/sign/ecdsa.ts";
import { partitionPredicate, PARTITION_PREDICATE, type PartitionClaims } from "../../core/sign/partition-claims.ts";
import { signBundle } from "../../core/sign/sign.ts";

const REPO = "e2e/signed";
const PASS = { owner: "owner passphrase", other: "other passphrase", registry: "registry passphrase" };
const SIMPLE = "application/vnd.dev.cosign.simplesigning.v1+json";
const BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json";
const ACCEPT = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json";

/** The 2x2 fixture's cells: (0,0) config.json, (0,1) tokenizer + README, (1,0) layers/, (1,1) head.bin. */
const SPEC = {
  allotments: [
    { src: "config.json", dst: "/model/config.json", row: 0, col: 0 },
    { src: ["tokenizer.txt", "README.md"], dst: ["/model/tokenizer.txt", "/model/README.md"], row: 0, col: 1 },
    { src: "model/layers", dst: "/model/layers/", row: 1, col: 0 },
    { src: "model/head.bin", dst: "/model/head.bin", row: 1, col: 1 },
  ],
  partitions: { jetson: "0.0.1.0", rpi: "0.1.1.1" },
};

interface Keys {
  dir: string;
  key: string;
  pub: string;
  pem: string;
  fingerprint: string;
}

describe("signed partitions: the trust chain reaches the device", () => {
  let cli: CliSandbox;
  let registry: Registry;
  let owner: Keys;
  let other: Keys;
  let reg: Keys;
  let spec: string;
  let pushed: PushResult;
  const policy = (keys: Keys, identity: FleetPolicy["identity"] = "exact"): FleetPolicy => ({
    base: registry.url,
    repository: `${registry.host}/${REPO}`,
    publicKey: keys.pem,
    identity,
  });
  const ref = (tag: string, repo = REPO): string => `${registry.host}/${repo}:${tag}`;
  const verify = async (tag: string, keys: Keys[], repo = REPO) => {
    const r = await cli.run(["verify", ref(tag, repo), ...keys.flatMap((k) => ["--key", k.pub]), "--json"]);
    return { code: r.code, report: (r.stdout ? JSON.parse(r.stdout) : undefined) as VerifyReport, stderr: r.stderr };
  };

  async function generate(name: keyof typeof PASS): Promise<Keys> {
    const dir = join(cli.dir, `keys-${name}`);
    const r = await cli.run(["key", "generate", "--output", dir, "--passphrase-stdin", "--json"], {
      input: `${PASS[name]}\n`,
    });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { fingerprint: string };
    const pub = join(dir, "cosign.pub");
    return { dir, key: join(dir, "cosign.key"), pub, pem: await readFile(pub, "utf8"), fingerprint: out.fingerprint };
  }

  beforeAll(async () => {
    cli = await cliSandbox();
    [owner, other, reg] = [await generate("owner"), await generate("other"), await generate("registry")];
    registry = await startRegistry({
      secrets: {
        PARTITION_SIGNING_KEY: await readFile(reg.key, "utf8"),
        PARTITION_SIGNING_KEY_PASSPHRASE: PASS.registry,
      },
      vars: {
        PARTITION_TRUSTED_KEYS: owner.pem,
        // Collections take whatever nothing reaches at once, so a test sees what they keep.
        GC_GRACE_SECONDS: "0",
        EDGE_TTL_SECONDS: "0",
      },
    });
    spec = await cli.fixture("2x2", "model");
    await writeFile(join(spec, "2dfs.json"), JSON.stringify(SPEC));
    const r = await cli.run(
      [
        "build",
        "-f",
        join(spec, "2dfs.json"),
        "scratch",
        ref("v1"),
        "--push",
        "--sign",
        owner.key,
        "--sign-partition",
        "0.0.0.1",
        "--passphrase-stdin",
        "--json",
      ],
      { input: PASS.owner, cwd: spec },
    );
    expect(r.code, r.stderr).toBe(0);
    pushed = (JSON.parse(r.stdout) as { push: PushResult }).push;
  }, 180_000);

  afterAll(async () => {
    await registry?.stop();
    await cli?.cleanup();
  });

  it("makes keys cosign reads: a P-256 SPKI public key, and a private key that cosign's decryption opens", async () => {
    const pub = createPublicKey(owner.pem);
    expect(pub.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    const pkcs8 = independentDecrypt(await readFile(owner.key, "utf8"), PASS.owner);
    const priv = createPrivateKey({ key: Buffer.from(pkcs8), format: "der", type: "pkcs8" });
    expect(createPublicKey(priv).export({ format: "pem", type: "spki" })).toBe(owner.pem);
    expect(() => independentDecrypt(owner.pem.replace(/PUBLIC/g, "X"), PASS.owner)).toThrow();
  });

  it("signs the image, its platform manifest, every named partition, all, and the --sign-partition label", async () => {
    const signed = pushed.signed!;
    expect(signed.key).toBe(owner.fingerprint);
    expect(signed.partitions.map((p) => p.label).sort()).toEqual(["0.0.0.1", "all", "jetson", "rpi"]);
    // An index and its one platform manifest, for v1 and each of four partitions.
    expect(signed.signatures).toHaveLength(10);
    for (const s of signed.signatures) expect([s.simpleSigning, s.bundle]).toEqual(["written", "written"]);
    const tags = (await (await fetch(`${registry.url}/v2/${REPO}/tags/list`)).json()) as { tags: string[] };
    const sigTags = tags.tags.filter((t) => /^sha256-[a-f0-9]{64}\.sig$/.test(t));
    expect(sigTags).toHaveLength(10);
    expect(tags.tags).toContain("v1");
  });

  it.each(["jetson", "0.0.0.1"])(
    "the pre-signed partition v1--%s verifies as a fleet verifies it, in both formats, under its exact name",
    async (label) => {
      const fleet = await fleetVerify(policy(owner), REPO, `v1--${label}`);
      expect(fleet.simpleSigning, JSON.stringify(fleet.checks)).toBe(true);
      expect(fleet.bundle, JSON.stringify(fleet.checks)).toBe(true);
      const { code, report } = await verify(`v1--${label}`, [owner]);
      expect(code).toBe(0);
      expect(report.ok).toBe(true);
      expect(report.partition?.signed).toBe(true);
      expect(report.partition?.served).toBe(fleet.digest);
      expect(report.platforms).toHaveLength(1);
      expect(report.platforms[0]).toMatchObject({ platform: expect.stringMatching(/^linux\//), ok: true });
    },
  );

  it("a rectangle nobody pre-signed is signed by the registry's key, and its attestation names source, selection and signer", async () => {
    const fleet = await fleetVerify(policy(reg, "repository"), REPO, "v1--1.1.1.1");
    expect(fleet.simpleSigning, JSON.stringify(fleet.checks)).toBe(true);
    expect(fleet.bundle, JSON.stringify(fleet.checks)).toBe(true);
    const source = await digestOf("v1");
    const attestation = fleet.checks.find(
      (c) => c.format === "bundle" && c.claims?.predicateType === "https://2dfs.dev/attestation/partition/v1",
    );
    expect(attestation?.ok).toBe(true);
    expect(attestation?.claims?.predicate).toEqual({
      source,
      selection: "1.1.1.1",
      sourceSigner: owner.fingerprint,
    });
    // Under the exact-name rule its .sig does not pass: the registry cannot know which tag was pulled.
    expect((await fleetVerify(policy(reg), REPO, "v1--1.1.1.1")).simpleSigning).toBe(false);
    const { code, report } = await verify("v1--1.1.1.1", [reg]);
    expect(code).toBe(0);
    expect(report.partition?.signatures.some((s) => s.ok && s.fingerprint === reg.fingerprint)).toBe(true);
    // Asked again, the same signatures come back: they are made once and remembered.
    const again = await fleetVerify(policy(reg, "repository"), REPO, "v1--1.1.1.1");
    expect(again.checks.map((c) => c.claims)).toEqual(fleet.checks.map((c) => c.claims));
  });

  it("verify refuses a registry signature whose claims name another source or selection", async () => {
    // A registry that signs what it should not: the partition 1.0.1.1, claimed as 9.9.9.9.
    const pkcs8 = independentDecrypt(await readFile(reg.key, "utf8"), PASS.registry);
    const key = await importPrivateKey(pkcs8);
    const subject = await descriptorOf(REPO, "v1--1.0.1.0");
    const claims = { source: await digestOf("v1"), selection: "9.9.9.9", sourceSigner: owner.fingerprint };
    const { bundle, referrer } = await signBundle(
      key,
      { identity: `${registry.host}/${REPO}`, subject: subject as Parameters<typeof signBundle>[1]["subject"] },
      {
        created: new Date(),
        predicateType: PARTITION_PREDICATE,
        predicate: partitionPredicate(claims as PartitionClaims),
      },
    );
    await pushBlob(REPO, Buffer.from(bundle));
    await pushBlob(REPO, Buffer.from("{}"));
    await putManifest(REPO, referrer.digest, JSON.parse(new TextDecoder().decode(referrer.manifest)));
    const { report } = await verify("v1--1.0.1.0", [reg]);
    const refused = report.partition!.signatures.filter((x) => !x.ok && x.fingerprint === reg.fingerprint);
    expect(refused.map((x) => x.reason)).toEqual([`it claims a partition 9.9.9.9 of ${claims.source}`]);
    // The registry's own signatures of it, made on request, still count.
    expect(report.partition!.signatures.filter((x) => x.ok)).toHaveLength(2);
  });

  it("an unsigned rectangle fails with the owner's key, and the registry signs nothing for an image no trusted key signed", async () => {
    const fleet = await fleetVerify(policy(owner), REPO, "v1--1.1.1.1");
    expect(fleet.simpleSigning).toBe(false);
    expect(fleet.bundle).toBe(false);
    // An image signed by a key the registry does not trust.
    await pushSigned("e2e/untrusted", other, PASS.other);
    const untrusted = await fleetVerify({ ...policy(reg, "repository") }, "e2e/untrusted", "v1--1.1.1.1");
    expect(untrusted.checks).toEqual([]);
    const referrers = await (
      await fetch(
        `${registry.url}/v2/e2e/untrusted/referrers/${untrusted.digest}?artifactType=${encodeURIComponent(BUNDLE)}`,
      )
    ).json();
    expect(referrers).toMatchObject({ manifests: [] });
  });

  it("a partition signed by another key fails with the owner's key", async () => {
    const fleet = await fleetVerify(
      { ...policy(owner), repository: `${registry.host}/e2e/untrusted` },
      "e2e/untrusted",
      "v1--jetson",
    );
    expect(fleet.checks.length).toBeGreaterThan(0);
    expect(fleet.simpleSigning).toBe(false);
    expect(fleet.bundle).toBe(false);
    expect(fleet.checks.every((c) => !c.ok && /verif/.test(c.reason ?? ""))).toBe(true);
    const r = await cli.run(["verify", ref("v1--jetson", "e2e/untrusted"), "--key", owner.pub]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/NOT verified/);
    expect((await cli.run(["verify", ref("v1--jetson", "e2e/untrusted"), "--key", other.pub])).code).toBe(0);
  });

  it("the signature of v1--jetson does not pass for v1--rpi, nor for another name of the same cells", async () => {
    // Only v1--jetson is signed here, so every signature rpi shows is one copied from jetson.
    const repo = "e2e/copied";
    await pushUnsigned(repo);
    await signLabel(repo, "jetson");
    const jetson = await digestOf("v1--jetson", repo);
    const rpi = await digestOf("v1--rpi", repo);
    expect(jetson).not.toBe(rpi);
    const fleetOf = (tag: string) =>
      fleetVerify({ ...policy(owner), repository: `${registry.host}/${repo}` }, repo, tag);
    const own = await fleetOf("v1--jetson");
    expect(own.simpleSigning && own.bundle).toBe(true);
    // Someone copies jetson's signatures onto rpi: its .sig tag, and a referrer of rpi holding jetson's bundle.
    await copyManifest(repo, `sha256-${jetson.slice(7)}.sig`, `sha256-${rpi.slice(7)}.sig`);
    const jetsonBundle = await bundleReferrer(repo, jetson);
    await pushReferrer(repo, { ...jetsonBundle, subject: await descriptorOf(repo, "v1--rpi") });
    const fleet = await fleetOf("v1--rpi");
    expect(fleet.checks.map((c) => [c.format, c.reason])).toEqual([
      ["simple-signing", "names another digest"],
      ["bundle", "names another digest"],
    ]);
    const copiedVerify = await verify("v1--rpi", [owner], repo);
    expect(copiedVerify.code, JSON.stringify(copiedVerify.report, null, 1)).toBe(1);
    // The same cells under another name: the digest is jetson's, but the payload names v1--jetson.
    const alias = await fleetOf("v1--0.0.1.0");
    expect(alias.digest).toBe(jetson);
    expect(alias.checks.find((c) => c.format === "simple-signing")?.reason).toBe("names another reference");
  });

  it("a bundle whose statement names another digest fails, and so does a tampered signature", async () => {
    const repo = "e2e/tampered";
    await pushUnsigned(repo);
    await signLabel(repo, "jetson");
    await signLabel(repo, "rpi");
    const rpi = await digestOf("v1--rpi", repo);
    const jetson = await digestOf("v1--jetson", repo);
    const fleetOf = (tag: string) =>
      fleetVerify({ ...policy(owner), repository: `${registry.host}/${repo}` }, repo, tag);
    expect((await fleetOf("v1--rpi")).checks.map((c) => c.ok)).toEqual([true, true]);
    // Tamper with rpi's .sig: one flipped bit in the signature.
    const sigTag = `sha256-${rpi.slice(7)}.sig`;
    const sig = await manifestJson(repo, sigTag);
    const layer = sig.layers[0] as { annotations: Record<string, string> };
    const bytes = Buffer.from(layer.annotations["dev.cosignproject.cosign/signature"]!, "base64");
    bytes[bytes.length - 3]! ^= 1;
    layer.annotations["dev.cosignproject.cosign/signature"] = bytes.toString("base64");
    await putManifest(repo, sigTag, sig);
    // Tamper with rpi's bundle: its statement made to name jetson, the signature kept.
    const referrer = await bundleReferrer(repo, rpi);
    const bundle = JSON.parse((await blob(repo, referrer.layers[0]!.digest)).toString("utf8"));
    const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, "base64").toString("utf8"));
    statement.subject = [{ digest: { sha256: rpi.slice(7) } }];
    statement.predicate = { forged: true };
    bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString("base64");
    const forged = Buffer.from(JSON.stringify(bundle));
    await pushBlob(repo, forged);
    await pushReferrer(repo, {
      ...referrer,
      layers: [{ mediaType: BUNDLE, digest: sha256(forged), size: forged.length }],
      annotations: { ...referrer.annotations, note: "forged" },
    });
    // And a bundle really signed by the owner, for jetson, attached to rpi: its statement names jetson.
    const jetsonBundle = await bundleReferrer(repo, jetson);
    await pushReferrer(repo, {
      ...jetsonBundle,
      subject: await descriptorOf(repo, "v1--rpi"),
      annotations: { n: "2" },
    });

    const fleet = await fleetOf("v1--rpi");
    const reasons = fleet.checks.map((c) => [c.format, c.ok ? "ok" : c.reason?.replace(/:.*/, "")]).sort();
    expect(reasons).toEqual(
      [
        ["simple-signing", "signature does not verify"],
        ["bundle", "ok"], // rpi's own, untouched
        ["bundle", "Sigstore's verifier"], // the forged statement
        ["bundle", "names another digest"], // jetson's
      ].sort(),
    );
    // 2dfs-push verify says the same of each.
    const { report } = await verify("v1--rpi", [owner], repo);
    const failed = report.partition!.signatures.filter((s) => !s.ok).map((s) => s.reason);
    expect(failed).toHaveLength(3);
    expect(failed.filter((r) => r === "no given key verifies the signature")).toHaveLength(2);
    expect(failed.some((r) => /^the statement names sha256:[a-f0-9]{64}, not sha256:/.test(r ?? ""))).toBe(true);
  });

  it("writes .sig manifests with the layout cosign documents, each payload verified with node:crypto", async () => {
    const digest = await digestOf("v1--jetson");
    const sig = await manifestJson(REPO, `sha256-${digest.slice(7)}.sig`);
    expect(sig.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect((sig.config as { mediaType: string }).mediaType).toBe("application/vnd.oci.image.config.v1+json");
    const layers = sig.layers as { mediaType: string; digest: string; annotations: Record<string, string> }[];
    expect(layers).toHaveLength(1);
    expect(layers[0]!.mediaType).toBe(SIMPLE);
    expect(Object.keys(layers[0]!.annotations)).toEqual(["dev.cosignproject.cosign/signature"]);
    const payload = await blob(REPO, layers[0]!.digest);
    expect(JSON.parse(payload.toString("utf8"))).toEqual({
      critical: {
        identity: { "docker-reference": ref("v1--jetson") },
        image: { "docker-manifest-digest": digest },
        type: "cosign container image signature",
      },
      optional: null,
    });
    const signature = Buffer.from(layers[0]!.annotations["dev.cosignproject.cosign/signature"]!, "base64");
    expect(nodeVerify("sha256", payload, createPublicKey(owner.pem), signature)).toBe(true);
    expect(nodeVerify("sha256", payload, createPublicKey(other.pem), signature)).toBe(false);
  });

  it("a second signer's .sig layer is appended: the first signer's stays, and each verifies with its own key", async () => {
    const repo = "e2e/cosigned";
    await pushSigned(repo, owner, PASS.owner);
    const r = await cli.run(["sign", ref("v1--jetson", repo), "--key", other.key], {
      env: { TDFS_KEY_PASSPHRASE: PASS.other },
    });
    expect(r.code, r.stderr).toBe(0);
    const digest = await digestOf("v1--jetson", repo);
    const sig = await manifestJson(repo, `sha256-${digest.slice(7)}.sig`);
    const layers = sig.layers as { digest: string; annotations: Record<string, string> }[];
    // Which key each layer verifies under, in order: the owner's first, then the one appended.
    const verdicts = await Promise.all(
      layers.map(async (layer) => {
        const payload = await blob(repo, layer.digest);
        const signature = Buffer.from(layer.annotations["dev.cosignproject.cosign/signature"]!, "base64");
        return [owner, other].map((k) => nodeVerify("sha256", payload, createPublicKey(k.pem), signature));
      }),
    );
    expect(verdicts).toEqual([
      [true, false],
      [false, true],
    ]);
    for (const keys of [owner, other]) {
      const fleet = await fleetVerify({ ...policy(keys), repository: `${registry.host}/${repo}` }, repo, "v1--jetson");
      expect(fleet.simpleSigning && fleet.bundle).toBe(true);
    }
  });

  it("verify accepts either format alone", async () => {
    const repo = "e2e/formats";
    await pushUnsigned(repo);
    await signLabel(repo, "jetson");
    await signLabel(repo, "rpi");
    const jetson = await digestOf("v1--jetson", repo);
    const rpi = await digestOf("v1--rpi", repo);
    // jetson keeps only its bundle, rpi only its .sig.
    const rpiBundle = await bundleReferrerDigest(repo, rpi);
    expect(
      (await fetch(`${registry.url}/v2/${repo}/manifests/sha256-${jetson.slice(7)}.sig`, { method: "DELETE" })).status,
    ).toBe(202);
    expect((await fetch(`${registry.url}/v2/${repo}/manifests/${rpiBundle}`, { method: "DELETE" })).status).toBe(202);
    const j = await verify("v1--jetson", [owner], repo);
    expect(j.report.partition!.signatures.map((s) => [s.format, s.ok])).toEqual([["bundle", true]]);
    const r = await verify("v1--rpi", [owner], repo);
    expect(r.report.partition!.signatures.map((s) => [s.format, s.ok])).toEqual([["simple-signing", true]]);
    expect([j.code, r.code]).toEqual([0, 0]);
    // Neither the source nor the partition signed: not verified.
    expect((await verify("v1--all", [owner], repo)).code).toBe(1);
  });

  it("pushing again with --sign adds no signature", async () => {
    const r = await cli.run(["push", ref("v1"), "--sign", owner.key, "--sign-partition", "0.0.0.1", "--json"], {
      env: { TDFS_KEY_PASSPHRASE: PASS.owner },
    });
    expect(r.code, r.stderr).toBe(0);
    const again = JSON.parse(r.stdout) as PushResult;
    expect(again.blobsUploaded).toBe(0);
    expect(again.signed!.signatures.every((s) => s.simpleSigning === "present" && s.bundle === "present")).toBe(true);
  });

  it("containerd pulls every partition as before, file for file", async () => {
    const containerd: Containerd = await startContainerd();
    try {
      const expected: Record<string, string[]> = {
        jetson: ["model/config.json", "model/layers/0.bin", "model/layers/1.bin"],
        rpi: ["model/README.md", "model/head.bin", "model/tokenizer.txt"],
        "1.1.1.1": ["model/head.bin"],
      };
      for (const [label, files] of Object.entries(expected)) {
        const r = await containerd.pull(ref(`v1--${label}`));
        expect(r.code, r.stderr).toBe(0);
        expect(await containerd.files(ref(`v1--${label}`))).toEqual(files);
      }
    } finally {
      await containerd.stop();
    }
  });

  it("a collection keeps the signatures of live images and partitions, and takes them with the image", async () => {
    const before = await fleetVerify(policy(owner), REPO, "v1--jetson");
    const bundleOf = await bundleReferrerDigest(REPO, before.digest);
    await collectGarbage(registry.url);
    const after = await fleetVerify(policy(owner), REPO, "v1--jetson");
    expect(after.checks).toEqual(before.checks);
    expect(after.bundle && after.simpleSigning).toBe(true);
    expect(
      (await fetch(`${registry.url}/v2/${REPO}/manifests/${bundleOf}`, { headers: { Accept: ACCEPT } })).status,
    ).toBe(200);

    const repo = "e2e/gone";
    await pushSigned(repo, owner, PASS.owner);
    const bundle = await bundleReferrerDigest(repo, await digestOf("v1--jetson", repo));
    expect(
      (await fetch(`${registry.url}/v2/${repo}/manifests/${bundle}`, { headers: { Accept: ACCEPT } })).status,
    ).toBe(200);
    expect((await fetch(`${registry.url}/v2/${repo}/manifests/v1`, { method: "DELETE" })).status).toBe(202);
    await collectGarbage(registry.url);
    expect(
      (await fetch(`${registry.url}/v2/${repo}/manifests/${bundle}`, { headers: { Accept: ACCEPT } })).status,
    ).toBe(404);
  });

  it("the web view shows who signed the image and the selected partition, in Chromium", async () => {
    const browser = await startBrowser();
    try {
      const { page, errors } = await browser.open(`${registry.url}/ui/${REPO}:v1?sel=1.1.1.1`);
      const rows = async (id: string): Promise<string[][]> =>
        page.$$eval(`#${id} tbody tr`, (trs) =>
          trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? "")),
        );
      const image = await rows("signatures");
      expect(image.map((r) => r[2])).toEqual(["trusted key", "trusted key"]);
      expect(image.every((r) => r[1] === `${owner.fingerprint.slice(0, 19)}…`)).toBe(true);
      const partition = await rows("partition-signatures");
      expect(partition.length).toBeGreaterThan(0);
      expect(partition.every((r) => r[2] === "registry key" && r[1] === `${reg.fingerprint.slice(0, 19)}…`)).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it("signs nothing when the registry serves another digest for a semantic tag, and names both", async () => {
    const repo = "e2e/mismatch";
    await pushUnsigned(repo);
    // A literal tag always wins over the partition: make v1--jetson name the whole image instead.
    await copyManifest(repo, "v1", "v1--jetson");
    const served = await digestOf("v1--jetson", repo);
    const r = await cli.run(["sign", ref("v1", repo), "--key", owner.key], {
      env: { TDFS_KEY_PASSPHRASE: PASS.owner },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `v1--jetson: the registry serves ${served}, but the partition computed here is sha256:[a-f0-9]{64}; nothing was signed`,
      ),
    );
    const tags = (await (await fetch(`${registry.url}/v2/${repo}/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags.filter((t) => t.endsWith(".sig"))).toEqual([]);
    expect(
      (await fleetVerify({ ...policy(owner), repository: `${registry.host}/${repo}` }, repo, "v1")).checks,
    ).toEqual([]);
  });

  it("shows a signature's claims as text in the web view, whatever they hold", async () => {
    const repo = "e2e/hostile";
    await pushUnsigned(repo);
    const digest = await digestOf("v1", repo);
    const hostile = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>`;
    const payload = Buffer.from(
      JSON.stringify({
        critical: {
          identity: { "docker-reference": hostile },
          image: { "docker-manifest-digest": digest },
          type: "cosign container image signature",
        },
        optional: null,
      }),
    );
    const config = Buffer.from("{}");
    await pushBlob(repo, payload);
    await pushBlob(repo, config);
    await putManifest(repo, `sha256-${digest.slice(7)}.sig`, {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256(config), size: config.length },
      layers: [
        {
          mediaType: SIMPLE,
          digest: sha256(payload),
          size: payload.length,
          annotations: { "dev.cosignproject.cosign/signature": "MEUCIQ<b>not</b>==" },
        },
      ],
    });
    const browser = await startBrowser();
    try {
      const { page, errors, dialogs } = await browser.open(`${registry.url}/ui/${repo}:v1`);
      const cells = await page.$$eval("#signatures tbody td", (tds) => tds.map((td) => td.textContent ?? ""));
      expect(cells).toEqual(["simple signing (.sig)", "not named", "unknown key", hostile]);
      expect(await page.evaluate(() => "__pwned" in globalThis)).toBe(false);
      expect(await page.$$("#signatures img, #signatures script")).toHaveLength(0);
      expect([errors, dialogs]).toEqual([[], []]);
    } finally {
      await browser.close();
    }
  });

  it.each([
    ["a wrong passphrase", (k: Keys) => ["--sign", k.key], { TDFS_KEY_PASSPHRASE: "wrong" }, /wrong passphrase/],
    ["a malformed key file", () => ["--sign", "2dfs.json"], {}, /not a PEM file/],
    ["a public key for --sign", (k: Keys) => ["--sign", k.pub], {}, /is a public key; signing needs the private key/],
    ["--sign-partition without --sign", () => ["--sign-partition", "0.0.0.0"], {}, /needs --sign KEY/],
    [
      "a label that selects nothing",
      (k: Keys) => ["--sign", k.key, "--sign-partition", "7.7.7.7"],
      { TDFS_KEY_PASSPHRASE: PASS.owner },
      /selects no allotment/,
    ],
  ])("refuses %s with exit 2 and pushes nothing", async (_what, flags, env, message) => {
    const repo = `e2e/refused-${Math.random().toString(36).slice(2, 8)}`;
    const r = await cli.run(
      ["build", "-f", join(spec, "2dfs.json"), "scratch", ref("v1", repo), "--push", ...flags(owner)],
      {
        cwd: spec,
        env,
      },
    );
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect((await fetch(`${registry.url}/v2/${repo}/tags/list`)).status).toBe(404);
  });

  it("refuses to sign what is not in the registry, with exit 2", async () => {
    const r = await cli.run(["sign", ref("v1", "e2e/never-pushed"), "--key", owner.key], {
      env: { TDFS_KEY_PASSPHRASE: PASS.owner },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/is not in the registry: push it before signing it/);
  });

  it("signs after the fact: `sign REF--label` signs that partition alone, checked against what the registry serves", async () => {
    expect((await fleetVerify(policy(owner), REPO, "v1--1.0.1.1")).bundle).toBe(false);
    const r = await cli.run(["sign", ref("v1--1.0.1.1"), "--key", owner.key, "--json"], {
      env: { TDFS_KEY_PASSPHRASE: PASS.owner },
    });
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { signatures: unknown[] }).signatures).toHaveLength(2);
    const fleet = await fleetVerify(policy(owner), REPO, "v1--1.0.1.1");
    expect(fleet.simpleSigning && fleet.bundle).toBe(true);
  });

  /** Builds the spec and pushes it to `repo`, signed with `keys`. */
  async function pushSigned(repo: string, keys: Keys, passphrase: string): Promise<void> {
    const r = await cli.run(
      ["build", "-f", join(spec, "2dfs.json"), "scratch", ref("v1", repo), "--push", "--sign", keys.key],
      { cwd: spec, env: { TDFS_KEY_PASSPHRASE: passphrase } },
    );
    expect(r.code, r.stderr).toBe(0);
  }

  async function pushUnsigned(repo: string): Promise<void> {
    const r = await cli.run(["build", "-f", join(spec, "2dfs.json"), "scratch", ref("v1", repo), "--push"], {
      cwd: spec,
    });
    expect(r.code, r.stderr).toBe(0);
  }

  async function signLabel(repo: string, label: string): Promise<void> {
    const r = await cli.run(["sign", ref(`v1--${label}`, repo), "--key", owner.key], {
      env: { TDFS_KEY_PASSPHRASE: PASS.owner },
    });
    expect(r.code, r.stderr).toBe(0);
  }

  async function digestOf(tag: string, repo = REPO): Promise<string> {
    const res = await fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, {
      method: "HEAD",
      headers: { Accept: ACCEPT },
    });
    expect(res.status).toBe(200);
    return res.headers.get("docker-content-digest")!;
  }

  async function descriptorOf(repo: string, tag: string): Promise<{ mediaType: string; digest: string; size: number }> {
    const res = await fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, { headers: { Accept: ACCEPT } });
    const bytes = Buffer.from(await res.arrayBuffer());
    return { mediaType: res.headers.get("content-type")!, digest: sha256(bytes), size: bytes.length };
  }

  async function manifestJson(
    repo: string,
    reference: string,
  ): Promise<Record<string, unknown> & { layers: unknown[] }> {
    const res = await fetch(`${registry.url}/v2/${repo}/manifests/${reference}`, { headers: { Accept: ACCEPT } });
    expect(res.status).toBe(200);
    return (await res.json()) as Record<string, unknown> & { layers: unknown[] };
  }

  async function putManifest(repo: string, reference: string, json: unknown): Promise<void> {
    const res = await fetch(`${registry.url}/v2/${repo}/manifests/${reference}`, {
      method: "PUT",
      headers: {
        "Content-Type": (json as { mediaType?: string }).mediaType ?? "application/vnd.oci.image.manifest.v1+json",
      },
      body: JSON.stringify(json),
    });
    expect(res.status, await res.text()).toBe(201);
  }

  async function copyManifest(repo: string, from: string, to: string): Promise<void> {
    await putManifest(repo, to, await manifestJson(repo, from));
  }

  async function bundleReferrerDigest(repo: string, digest: string): Promise<string> {
    const index = (await (
      await fetch(`${registry.url}/v2/${repo}/referrers/${digest}?artifactType=${encodeURIComponent(BUNDLE)}`)
    ).json()) as { manifests: { digest: string }[] };
    expect(index.manifests.length).toBeGreaterThan(0);
    return index.manifests[0]!.digest;
  }

  type Referrer = {
    layers: { mediaType: string; digest: string; size: number }[];
    subject: unknown;
    annotations: Record<string, string>;
  };

  async function bundleReferrer(repo: string, digest: string): Promise<Referrer> {
    return (await manifestJson(repo, await bundleReferrerDigest(repo, digest))) as unknown as Referrer;
  }

  async function pushReferrer(repo: string, manifest: Referrer): Promise<void> {
    const bytes = Buffer.from(JSON.stringify(manifest));
    await putManifest(repo, sha256(bytes), manifest);
  }

  async function blob(repo: string, digest: string): Promise<Buffer> {
    const res = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`);
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  }

  async function pushBlob(repo: string, bytes: Buffer): Promise<void> {
    const res = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/?digest=${sha256(bytes)}`, {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream", "Content-Length": String(bytes.length) },
      body: bytes,
    });
    expect(res.status).toBe(201);
  }
});

function sha256(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}
