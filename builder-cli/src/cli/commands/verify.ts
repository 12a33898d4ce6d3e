/**
 * `verify REF[--label] --key PUB`: one line for the source image, one per platform, one for the
 * partition; exit 0 only when everything matches and a given key vouches for it.
 */
import { shortDigest } from "../../../../core/format.ts";
import { parseImageRef } from "../../registry/ref.ts";
import { readPublicKeys } from "../../sign/key-files.ts";
import { verifyReference, type Signed, type VerifyReport } from "../../sign/verify-image.ts";
import { RegistrySource } from "../../store/registry-source.ts";
import { createOutput } from "../output.ts";
import { authLookup, type RegistryFlags } from "../registry-flags.ts";
import { EXIT_FAILURE } from "../run.ts";

export interface VerifyFlags extends RegistryFlags {
  key: string[];
  json?: boolean;
}

export async function verifyCommand(reference: string, flags: VerifyFlags): Promise<void> {
  const out = createOutput(flags.json === true);
  const keys = await readPublicKeys(flags.key);
  const ref = parseImageRef(reference, { plainHttp: flags.plainHttp === true });
  const source = new RegistrySource(ref, await authLookup(flags)(ref.registry));
  const report = await verifyReference(source, keys);
  out.result(report, (r) => process.stdout.write(`${formatVerifyReport(r)}\n`));
  if (!report.ok) process.exitCode = EXIT_FAILURE;
}

export function formatVerifyReport(r: VerifyReport): string {
  const lines = [signedLine("source", r.source)];
  for (const p of r.platforms) {
    if (p.expected === undefined) {
      lines.push(`${p.platform}\t${shortDigest(p.source)}\t${p.ok ? "signed" : "not signed"}`);
    } else {
      const what = p.ok
        ? `partition ${shortDigest(p.expected)} matches (${p.allotments} allotment(s))`
        : `partition should be ${shortDigest(p.expected)}, the registry serves ${p.served ? shortDigest(p.served) : "nothing"}`;
      lines.push(`${p.platform}\t${what}`);
    }
  }
  if (r.partition) lines.push(signedLine("partition", r.partition));
  for (const problem of r.problems) lines.push(`problem: ${problem}`);
  lines.push(r.ok ? `verified ${r.reference}` : `NOT verified: ${r.reference}`);
  return lines.join("\n");
}

function signedLine(what: string, s: Signed): string {
  const good = s.signatures.filter((x) => x.ok);
  const by = [...new Set(good.map((x) => `${x.fingerprint ? shortDigest(x.fingerprint) : "?"} (${x.format})`))];
  const status = good.length
    ? `signed by ${by.join(", ")}`
    : s.signatures.length
      ? `no valid signature: ${s.signatures.map((x) => `${x.format}: ${x.reason}`).join("; ")}`
      : "not signed";
  return `${what}\t${s.reference}\t${shortDigest(s.digest)}\t${status}`;
}
