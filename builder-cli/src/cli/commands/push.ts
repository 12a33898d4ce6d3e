/** `push TARGET`: a built image from the local store to its registry. */
import path from "node:path";
import { BASE_REF_ANNOTATION } from "../../build/build.ts";
import { BlobLocations } from "../../registry/blob-locations.ts";
import { RegistryClient } from "../../registry/client.ts";
import type { PushReport } from "../../registry/image.ts";
import { createProgressReporter, formatReport } from "../../registry/progress.ts";
import { loadImage } from "../../store/graph.ts";
import { openStoredImage, targetRef } from "../../store/images.ts";
import { pushPlanFromLayout } from "../../store/push-plan.ts";
import { blobLocationsDir } from "../../store/paths.ts";
import { LayoutSource } from "../../store/source.ts";
import { touchImage } from "../../store/usage.ts";
import { createOutput } from "../output.ts";
import { sharedStoreLock } from "../store-lock.ts";
import { shortDigest } from "../../../../core/format.ts";
import { planLocally } from "../../sign/plan.ts";
import { formatSignReport, signImage, type SignReport } from "../../sign/sign-image.ts";
import { layoutPartitionSource } from "../../sign/sources.ts";
import { authLookup } from "../registry-flags.ts";
import { signingKeyOf, type SigningFlags } from "../signing-flags.ts";

export interface PushFlags extends SigningFlags {
  json?: boolean;
  store?: string;
}

export interface PushResult extends PushReport {
  /** What --sign signed. */
  signed?: SignReport;
}

/**
 * Pushes TARGET from the store, with progress on stderr unless the output is JSON; with --sign,
 * then signs it and its partitions. The key and every --sign-partition label are checked before
 * the first byte is sent.
 */
export async function pushStored(target: string, flags: PushFlags): Promise<PushResult> {
  const stored = targetRef(target, flags.store ? path.resolve(flags.store) : undefined, flags.plainHttp);
  const { layout, entry } = await openStoredImage(stored);
  const graph = await loadImage(new LayoutSource(layout), entry.digest);
  const key = await signingKeyOf(flags);
  // What will be signed is computed before the push: a label that cannot be signed sends nothing.
  const local = key
    ? await planLocally({
        root: graph.root,
        tag: stored.tag,
        source: layoutPartitionSource(layout),
        whole: true,
        labels: flags.signPartition ?? [],
        name: stored.name,
      })
    : undefined;
  // Base layers can be mounted when the base came from a repository of the same registry.
  const base = entry.annotations?.[BASE_REF_ANNOTATION];
  const prefix = `${stored.ref.registry}/`;
  const mountFrom = base?.startsWith(prefix) ? base.slice(prefix.length) : undefined;
  const plan = await pushPlanFromLayout(layout, graph, stored.tag, mountFrom);
  const auth = await authLookup(flags)(stored.ref.registry);
  const progress = flags.json ? undefined : createProgressReporter();
  const client = new RegistryClient({
    registry: stored.ref.registry,
    plainHttp: stored.ref.plainHttp,
    locations: await BlobLocations.open(blobLocationsDir(), stored.ref.registry),
    // What this machine never pushed may still be in the registry, pushed from somewhere else.
    mountAnywhere: true,
    ...(auth ? { auth } : {}),
    ...(progress ? { onEvent: (e) => progress.onEvent(e) } : {}),
  });
  let report: PushReport;
  try {
    report = await client.pushImage(stored.ref.repository, plan);
  } finally {
    progress?.stop();
  }
  await touchImage(stored);
  if (!key || !local) return report;
  // Signatures are a few small blobs per manifest: no progress lines for them.
  const quiet = new RegistryClient({
    registry: stored.ref.registry,
    plainHttp: stored.ref.plainHttp,
    ...(auth ? { auth } : {}),
  });
  const signed = await signImage(quiet, { ...stored.ref, tag: stored.tag }, key, local);
  return { ...report, signed };
}

export async function pushCommand(target: string, flags: PushFlags): Promise<void> {
  const out = createOutput(flags.json === true);
  const report = await sharedStoreLock(`2dfs-push push ${target}`, () => pushStored(target, flags));
  out.result(report, (r) => process.stdout.write(`${formatPushResult(r)}\n`));
}

/** The push line, then what was signed. */
export function formatPushResult(r: PushResult): string {
  return r.signed ? `${formatReport(r)}\n${formatSignReport(r.signed, shortDigest)}` : formatReport(r);
}
