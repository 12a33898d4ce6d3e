/** `export REF--x1.y1.x2.y2[--...] DEST` */
import path from "node:path";
import { exportPartition, type ExportResult } from "../../export/export.ts";
import { parsePlatform } from "../../store/platform.ts";
import { formatPlatform } from "../../store/platform.ts";
import { formatBytes } from "../../../../core/format.ts";
import { createOutput } from "../output.ts";
import { openImage, splitLabeledRef } from "../refs.ts";
import type { RegistryFlags } from "../registry-flags.ts";
import { sharedStoreLock } from "../store-lock.ts";

export interface ExportFlags extends RegistryFlags {
  json?: boolean;
  store?: string;
  platform: string[];
}

export async function exportCommand(labeled: string, dest: string, flags: ExportFlags): Promise<void> {
  // It may read the local store: a prune must not remove what it is reading.
  await sharedStoreLock(`2dfs-push export ${labeled}`, () => exportTo(labeled, dest, flags));
}

async function exportTo(labeled: string, dest: string, flags: ExportFlags): Promise<void> {
  const out = createOutput(flags.json === true);
  const { ref, label } = splitLabeledRef(labeled);
  const opened = await openImage(ref, { ...flags, ...(flags.store ? { store: path.resolve(flags.store) } : {}) });
  const result = await exportPartition({
    source: opened.source,
    reference: opened.reference,
    label,
    tag: layoutRefName(ref, opened.tag, label),
    dest,
    platforms: flags.platform.map(parsePlatform),
  });
  out.result(result, printExport);
}

/**
 * The name recorded in the layout's `org.opencontainers.image.ref.name`: the whole reference with
 * the partition label (`ml/model:v1--jetson`), so `podman load` and `skopeo copy oci:` name the
 * image after what was exported. A layout source (or a digest) has no name: its tag and label.
 */
export function layoutRefName(ref: string, tag: string, label: string): string {
  if (ref.startsWith("oci:") || ref.includes("@")) return `${tag}--${label}`;
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  const repo = colon > slash ? ref.slice(0, colon) : ref;
  return `${repo}:${tag}--${label}`;
}

function printExport(r: ExportResult): void {
  for (const p of r.platforms) {
    const bytes = p.allotments.reduce((n, a) => n + a.size, 0);
    const cells = p.allotments.map((a) => `(${a.row},${a.col})`).join(" ");
    process.stdout.write(
      `${formatPlatform(p.platform)}: ${p.allotments.length} allotment(s), ${formatBytes(bytes)}: ${cells}\n`,
    );
  }
  process.stdout.write(`wrote ${r.format} ${r.dest} (${r.tag}) ${r.digest}\n`);
}
