/** `copy SRC DST` */
import { copyImage } from "../../export/copy.ts";
import { createProgressReporter, formatReport } from "../../registry/progress.ts";
import { parseImageRef } from "../../registry/ref.ts";
import { RegistrySource } from "../../store/registry-source.ts";
import { createOutput } from "../output.ts";
import { authLookup, type RegistryFlags } from "../registry-flags.ts";

export interface CopyFlags extends RegistryFlags {
  json?: boolean;
}

export async function copyCommand(src: string, dst: string, flags: CopyFlags): Promise<void> {
  const out = createOutput(flags.json === true);
  const opts = flags.plainHttp ? { plainHttp: true } : {};
  const from = parseImageRef(src, opts);
  const to = parseImageRef(dst, opts);
  const auth = authLookup(flags);
  const progress = out.json ? undefined : createProgressReporter();
  try {
    const source = new RegistrySource(from, await auth(from.registry));
    const report = await copyImage(source, to, await auth(to.registry), progress && ((e) => progress.onEvent(e)));
    out.result(report, (r) => process.stdout.write(`${formatReport(r)}\n`));
  } finally {
    progress?.stop();
  }
}
