/**
 * Signing an image that is in the registry: plan (sign/plan.ts), then write every signature
 * (sign/registry-signatures.ts). `push --sign` and `build --push --sign` pass the local store as
 * the source, `sign` reads the image back from the registry.
 */
import type { SigningKey } from "../../../core/sign/ecdsa.ts";
import type { RegistryClient } from "../registry/client.ts";
import type { ImageRef } from "../registry/ref.ts";
import { planSignatures, type LocalPlan } from "./plan.ts";
import { writeSignatures, type SignOutcome } from "./registry-signatures.ts";

export interface SignReport {
  key: string;
  partitions: { label: string; reference: string; digest: string }[];
  signatures: SignOutcome[];
}

/** Checks the plan against the registry, then writes every signature. */
export async function signImage(
  client: RegistryClient,
  ref: ImageRef & { tag: string },
  key: SigningKey,
  local: LocalPlan,
): Promise<SignReport> {
  const plan = await planSignatures(client, ref, local);
  const signatures = await writeSignatures(client, ref.repository, key, plan.targets);
  return { key: key.publicKey.fingerprint, partitions: plan.partitions, signatures };
}

/** "signed 12 manifests (7 new, 5 already signed) with sha256:abcd…" and the partitions by reference. */
export function formatSignReport(r: SignReport, short: (d: string) => string): string {
  const fresh = r.signatures.filter((s) => s.simpleSigning === "written" || s.bundle === "written").length;
  const lines = r.partitions.map((p) => `signed ${p.reference} ${short(p.digest)}`);
  lines.push(
    `signed ${r.signatures.length} manifest(s) with ${short(r.key)}: ${fresh} new, ${r.signatures.length - fresh} already signed`,
  );
  return lines.join("\n");
}
