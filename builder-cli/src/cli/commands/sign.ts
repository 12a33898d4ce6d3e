/**
 * `sign REF[--label] --key KEY`: signs what is already in a registry. A plain REF signs the image,
 * its platform manifests, its named partitions and `all` (as `push --sign` does); REF--label signs
 * that partition alone. Each partition is recomputed from the registry's own bytes and must be
 * what the registry serves.
 */
import { shortDigest } from "../../../../core/format.ts";
import type { Digest } from "../../../../core/oci/digest.ts";
import { splitSemanticTag } from "../../../../core/tdfs/label.ts";
import { parseImageRef, formatImageRef } from "../../registry/ref.ts";
import { planLocally } from "../../sign/plan.ts";
import { formatSignReport, signImage } from "../../sign/sign-image.ts";
import { registryPartitionSource } from "../../sign/sources.ts";
import { InputError } from "../../spec/errors.ts";
import { RegistrySource } from "../../store/registry-source.ts";
import { createOutput } from "../output.ts";
import { authLookup } from "../registry-flags.ts";
import { signingKeyOf, type SigningFlags } from "../signing-flags.ts";

export interface SignFlags extends SigningFlags {
  key: string;
  json?: boolean;
}

export async function signCommand(reference: string, flags: SignFlags): Promise<void> {
  const out = createOutput(flags.json === true);
  const ref = parseImageRef(reference, { plainHttp: flags.plainHttp === true });
  if (ref.digest || ref.tag === undefined) {
    throw new InputError(`${reference}: sign a tag (REF:tag or REF:tag--label), so the signature can name it`);
  }
  const key = await signingKeyOf({ ...flags, sign: flags.key });
  const split = splitSemanticTag(ref.tag);
  const base = { ...ref, tag: split ? split.base : ref.tag };
  const source = new RegistrySource(base, await authLookup(flags)(ref.registry));
  const served = await source.client.findManifest(base.repository, base.tag);
  if (!served) throw new InputError(`${formatImageRef(base)} is not in the registry: push it before signing it`);
  const local = await planLocally({
    root: { digest: served.digest as Digest, mediaType: served.mediaType, bytes: served.bytes },
    tag: base.tag,
    source: registryPartitionSource(source),
    whole: !split,
    labels: split ? [split.label] : (flags.signPartition ?? []),
    name: formatImageRef(base),
  });
  const report = await signImage(source.client, base, key!, local);
  out.result(report, (r) => {
    if (r.signatures.length === 0) process.stdout.write(`nothing to sign in ${formatImageRef(ref)}\n`);
    else process.stdout.write(`${formatSignReport(r, shortDigest)}\n`);
  });
}
