/** `inspect [--remote] REF[--LABEL]` */
import path from "node:path";
import { inspectImage } from "../../inspect/inspect.ts";
import { renderInspect } from "../../inspect/render.ts";
import { createOutput } from "../output.ts";
import { maybeLabeledRef, openImage } from "../refs.ts";
import type { RegistryFlags } from "../registry-flags.ts";

export interface InspectFlags extends RegistryFlags {
  json?: boolean;
  store?: string;
  remote?: boolean;
}

export async function inspectCommand(arg: string, flags: InspectFlags): Promise<void> {
  const out = createOutput(flags.json === true);
  // A semantic tag (`model:v1--jetson`) is read as the image `model:v1` and the label to resolve.
  const labeled = arg.startsWith("oci:") ? undefined : maybeLabeledRef(arg);
  const opened = await openImage(labeled?.ref ?? arg, {
    ...flags,
    ...(flags.store ? { store: path.resolve(flags.store) } : {}),
  });
  const result = await inspectImage(
    opened.source,
    opened.reference,
    opened.tag,
    opened.facts,
    opened.origin,
    labeled?.label,
  );
  out.result(result, (r) => process.stdout.write(`${renderInspect(r)}\n`));
}
