/** `push TARGET`: a built image from the local store to its registry. */
import path from "node:path";
import { BASE_REF_ANNOTATION } from "../../build/build.ts";
import { BlobLocations } from "../../registry/blob-locations.ts";
import { RegistryClient } from "../../registry/client.ts";
import type { PushReport } from "../../registry/image.ts";
import { createProgressReporter, formatReport } from "../../registry/progress.ts";
import { loadImage } from "../../store/graph.ts";
import { targetRef } from "../../store/images.ts";
import { OciLayout } from "../../store/layout.ts";
import { pushPlanFromLayout } from "../../store/push-plan.ts";
import { blobLocationsDir } from "../../store/paths.ts";
import { LayoutSource } from "../../store/source.ts";
import { createOutput } from "../output.ts";
import { authLookup, type RegistryFlags } from "../registry-flags.ts";

export interface PushFlags extends RegistryFlags {
  json?: boolean;
  store?: string;
}

/** Pushes TARGET from the store, with progress on stderr unless the output is JSON. */
export async function pushStored(target: string, flags: PushFlags): Promise<PushReport> {
  const stored = targetRef(target, flags.store ? path.resolve(flags.store) : undefined, flags.plainHttp);
  const layout = await OciLayout.open(stored.dir);
  const entry = await layout.resolve(stored.tag);
  const graph = await loadImage(new LayoutSource(layout), entry.digest);
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
    ...(auth ? { auth } : {}),
    ...(progress ? { onEvent: (e) => progress.onEvent(e) } : {}),
  });
  try {
    return await client.pushImage(stored.ref.repository, plan);
  } finally {
    progress?.stop();
  }
}

export async function pushCommand(target: string, flags: PushFlags): Promise<void> {
  const out = createOutput(flags.json === true);
  const report = await pushStored(target, flags);
  out.result(report, (r) => process.stdout.write(`${formatReport(r)}\n`));
}
