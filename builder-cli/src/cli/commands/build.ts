/** `build [-f 2dfs.json] BASE TARGET [--push]` */
import path from "node:path";
import { build, type BuildResult } from "../../build/build.ts";
import { parsePlatform } from "../../store/platform.ts";
import { formatBytes } from "../../../../core/format.ts";
import { createOutput } from "../output.ts";
import { buildProgress } from "../progress.ts";
import { formatPushResult, pushStored } from "./push.ts";
import { authLookup, type RegistryFlags } from "../registry-flags.ts";
import { sharedStoreLock } from "../store-lock.ts";

export interface BuildFlags extends RegistryFlags {
  file: string;
  push?: boolean;
  platform: string[];
  compression: string;
  level?: number;
  json?: boolean;
  store?: string;
}

export async function buildCommand(base: string, target: string, flags: BuildFlags): Promise<void> {
  // A prune waits for the build (and its push) to finish: until the image is tagged, what it
  // wrote is referenced by nothing.
  await sharedStoreLock(`2dfs-push build ${target}${flags.push ? " --push" : ""}`, () =>
    buildAndPush(base, target, flags),
  );
}

async function buildAndPush(base: string, target: string, flags: BuildFlags): Promise<void> {
  const out = createOutput(flags.json === true);
  const progress = buildProgress(out);
  let result: BuildResult;
  try {
    result = await build({
      specFile: path.resolve(flags.file),
      base,
      target,
      platforms: flags.platform.map(parsePlatform),
      compression: flags.compression,
      ...(flags.level !== undefined ? { level: flags.level } : {}),
      ...(flags.store ? { storeDir: path.resolve(flags.store) } : {}),
      ...(flags.plainHttp ? { plainHttp: true } : {}),
      auth: authLookup(flags),
      onEvent: progress.onEvent,
    });
  } finally {
    progress.stop();
  }
  if (!flags.push) {
    out.result(result, printBuild);
    return;
  }
  if (!out.json) printBuild(result);
  // Push what was just built, from the same store.
  const push = await pushStored(target, flags);
  out.result({ build: result, push }, (r) => process.stdout.write(`${formatPushResult(r.push)}\n`));
}

function printBuild(r: BuildResult): void {
  for (const a of r.allotments) {
    process.stdout.write(
      `(${a.row},${a.col})\t${a.cached ? "cached" : "built"}\t${formatBytes(a.size)}\t${a.mediaType.split(".").pop()}\t${a.digest}\n`,
    );
  }
  process.stdout.write(
    `built ${r.target} ${r.digest}: ${r.rebuilt} rebuilt, ${r.cached} cached, ${r.platforms.length} platform(s)\n`,
  );
}
