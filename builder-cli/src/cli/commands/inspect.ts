/** `inspect REF` */
import path from "node:path";
import { inspectImage } from "../../inspect/inspect.ts";
import { renderInspect } from "../../inspect/render.ts";
import { createOutput } from "../output.ts";
import { openImage } from "../refs.ts";
import type { RegistryFlags } from "../registry-flags.ts";

export interface InspectFlags extends RegistryFlags {
  json?: boolean;
  store?: string;
}

export async function inspectCommand(ref: string, flags: InspectFlags): Promise<void> {
  const out = createOutput(flags.json === true);
  const opened = await openImage(ref, { ...flags, ...(flags.store ? { store: path.resolve(flags.store) } : {}) });
  const result = await inspectImage(opened.source, opened.reference, opened.tag, opened.facts);
  out.result(result, (r) => process.stdout.write(`${renderInspect(r)}\n`));
}
