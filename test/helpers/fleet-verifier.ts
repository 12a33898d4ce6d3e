/**
 * What a fleet's verifier does with a pulled reference, written from the formats' documents and
 * sharing no code with the project (nothing from core/sign): Sigstore's own verifier
 * (@sigstore/verify, with the public key and no transparency log) for the bundles among the
 * referrers, node:crypto for the simple-signing layers of the `.sig` manifest, and
 * containers/image's identity rules (matchRepoDigestOrExact, or matchRepository).
 */
import { bundleFromJSON } from "@sigstore/bundle";
import { toSignedEntity, toTrustMaterial, Verifier } from "@sigstore/verify";
import { createHash, createPublicKey, verify as nodeVerify, type KeyObject } from "node:crypto";

const BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json";
const SIMPLE = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature";
const ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");
/** Statements that are signatures: cosign's, and the registry's partition attestation. */
export const SIGNATURE_PREDICATES = [
  "https://sigstore.dev/cosign/sign/v1",
  "https://2dfs.dev/attestation/partition/v1",
];

export interface FleetCheck {
  format: "simple-signing" | "bundle";
  ok: boolean;
  reason?: string;
  /** The signed statement or payload, parsed. */
  claims?: Record<string, unknown>;
}

export interface FleetResult {
  digest: string;
  checks: FleetCheck[];
  /** Whether each format has at least one signature that passes. */
  simpleSigning: boolean;
  bundle: boolean;
}

export interface FleetPolicy {
  /** `http://host:port` */
  base: string;
  /** `host:port/repo`, as the fleet names the registry. */
  repository: string;
  /** PEM of the one trusted public key. */
  publicKey: string;
  /** matchRepoDigestOrExact (the default) or matchRepository. */
  identity?: "exact" | "repository";
}

/** Verifies `tag` (or a digest) in `repo` as a fleet would before running it. */
export async function fleetVerify(policy: FleetPolicy, repo: string, reference: string): Promise<FleetResult> {
  const key = createPublicKey(policy.publicKey);
  const manifest = await fetch(`${policy.base}/v2/${repo}/manifests/${reference}`, { headers: { Accept: ACCEPT } });
  if (manifest.status !== 200) throw new Error(`GET ${repo}:${reference} answered ${manifest.status}`);
  const digest = sha256(Buffer.from(await manifest.arrayBuffer()));
  const byTag = !reference.includes(":");
  const wanted = byTag ? `${policy.repository}:${reference}` : policy.repository;
  const checks = [
    ...(await simpleChecks(policy, repo, digest, key, (ref) =>
      policy.identity === "repository" || !byTag ? repositoryOf(ref) === policy.repository : ref === wanted,
    )),
    ...(await bundleChecks(policy, repo, digest, key)),
  ];
  return {
    digest,
    checks,
    simpleSigning: checks.some((c) => c.format === "simple-signing" && c.ok),
    bundle: checks.some((c) => c.format === "bundle" && c.ok),
  };
}

async function simpleChecks(
  policy: FleetPolicy,
  repo: string,
  digest: string,
  key: KeyObject,
  identityOk: (ref: string) => boolean,
): Promise<FleetCheck[]> {
  const res = await fetch(`${policy.base}/v2/${repo}/manifests/sha256-${digest.slice(7)}.sig`, {
    headers: { Accept: ACCEPT },
  });
  if (res.status === 404) return [];
  if (res.status !== 200) throw new Error(`GET the .sig of ${digest} answered ${res.status}`);
  const m = (await res.json()) as {
    layers: { mediaType: string; digest: string; annotations?: Record<string, string> }[];
  };
  const out: FleetCheck[] = [];
  for (const layer of m.layers.filter((l) => l.mediaType === SIMPLE)) {
    const payload = await blob(policy, repo, layer.digest);
    const signature = Buffer.from(layer.annotations?.[SIGNATURE_ANNOTATION] ?? "", "base64");
    const claims = JSON.parse(payload.toString("utf8")) as {
      critical: { identity: { "docker-reference": string }; image: { "docker-manifest-digest": string }; type: string };
    };
    const fail = (reason: string): FleetCheck => ({ format: "simple-signing", ok: false, reason, claims });
    if (!nodeVerify("sha256", payload, key, signature)) out.push(fail("signature does not verify"));
    else if (claims.critical.type !== "cosign container image signature") out.push(fail("not an image signature"));
    else if (claims.critical.image["docker-manifest-digest"] !== digest) out.push(fail("names another digest"));
    else if (!identityOk(claims.critical.identity["docker-reference"])) out.push(fail("names another reference"));
    else out.push({ format: "simple-signing", ok: true, claims });
  }
  return out;
}

async function bundleChecks(policy: FleetPolicy, repo: string, digest: string, key: KeyObject): Promise<FleetCheck[]> {
  const res = await fetch(`${policy.base}/v2/${repo}/referrers/${digest}?artifactType=${encodeURIComponent(BUNDLE)}`);
  if (res.status !== 200) throw new Error(`GET the referrers of ${digest} answered ${res.status}`);
  const index = (await res.json()) as { manifests: { digest: string; artifactType?: string }[] };
  const out: FleetCheck[] = [];
  for (const r of index.manifests.filter((d) => d.artifactType === BUNDLE)) {
    const m = (await (
      await fetch(`${policy.base}/v2/${repo}/manifests/${r.digest}`, { headers: { Accept: ACCEPT } })
    ).json()) as { layers: { mediaType: string; digest: string }[]; subject?: { digest: string } };
    for (const layer of m.layers.filter((l) => l.mediaType === BUNDLE)) {
      const json = JSON.parse((await blob(policy, repo, layer.digest)).toString("utf8"));
      const statement = JSON.parse(Buffer.from(json.dsseEnvelope.payload, "base64").toString("utf8")) as {
        subject: { digest: Record<string, string> }[];
        predicateType: string;
      };
      const fail = (reason: string): FleetCheck => ({ format: "bundle", ok: false, reason, claims: statement });
      try {
        sigstoreVerifier(key).verify(toSignedEntity(bundleFromJSON(json)));
      } catch (e) {
        out.push(fail(`Sigstore's verifier: ${e instanceof Error ? e.message : String(e)}`));
        continue;
      }
      if (!statement.subject.some((s) => `sha256:${s.digest.sha256}` === digest))
        out.push(fail("names another digest"));
      else if (!SIGNATURE_PREDICATES.includes(statement.predicateType)) out.push(fail("not a signature"));
      else out.push({ format: "bundle", ok: true, claims: statement });
    }
  }
  return out;
}

/** A verifier that trusts `key` whatever hint a bundle gives, as `cosign verify --key` does. */
export function sigstoreVerifier(key: KeyObject): Verifier {
  const trust = toTrustMaterial(
    {
      mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
      tlogs: [],
      ctlogs: [],
      certificateAuthorities: [],
      timestampAuthorities: [],
    } as unknown as Parameters<typeof toTrustMaterial>[0],
    () => ({ publicKey: key, validFor: () => true }),
  );
  return new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
}

async function blob(policy: FleetPolicy, repo: string, digest: string): Promise<Buffer> {
  const res = await fetch(`${policy.base}/v2/${repo}/blobs/${digest}`);
  if (res.status !== 200) throw new Error(`GET blob ${digest} answered ${res.status}`);
  const bytes = Buffer.from(await res.arrayBuffer());
  if (sha256(bytes) !== digest) throw new Error(`blob ${digest} arrived corrupt`);
  return bytes;
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function repositoryOf(reference: string): string {
  const noDigest = reference.split("@")[0]!;
  const slash = noDigest.lastIndexOf("/");
  const colon = noDigest.lastIndexOf(":");
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}
