/**
 * The local store: `images` lists it, `rm REF...` removes images, `prune` removes what no image
 * references, `du` gives its totals. rm and prune hold the store lock exclusively, so they wait
 * for running builds and pushes (which hold it shared) and those wait for them.
 */
import path from "node:path";
import { formatBytes, shortDigest } from "../../../../core/format.ts";
import { InputError } from "../../spec/errors.ts";
import { diskUsage, type DiskUsage } from "../../store/disk-usage.ts";
import { openStoredImage, storedRef, type StoredRef } from "../../store/images.ts";
import { readStore, type StoredImage } from "../../store/inventory.ts";
import { OciLayout } from "../../store/layout.ts";
import { cacheDir, imagesDir } from "../../store/paths.ts";
import { applyPrune, planPrune } from "../../store/prune.ts";
import { forgetUsage } from "../../store/usage.ts";
import { alignColumns } from "../../text/table.ts";
import { createOutput } from "../output.ts";
import { exclusiveStoreLock } from "../store-lock.ts";

export interface StoreFlags {
  store?: string;
  json?: boolean;
}

export interface ImageListing {
  reference: string;
  digest: string;
  platforms: string[];
  field?: { rows: number; cols: number; allotments: number };
  /** Every blob it references, each once. */
  bytes: number;
  /** The part of `bytes` in blobs that other stored images reference too. */
  sharedBytes: number;
  lastUsed: string;
  damaged?: string;
}

const storeRoot = (flags: StoreFlags): string => (flags.store ? path.resolve(flags.store) : imagesDir());

export async function imagesCommand(flags: StoreFlags): Promise<void> {
  const out = createOutput(flags.json === true);
  const root = storeRoot(flags);
  const images = (await readStore(root)).flatMap((l) => l.images);
  const listing = images.map((i) => listImage(i, images));
  out.result({ store: root, images: listing }, (r) => {
    if (r.images.length === 0) {
      out.line(`no images in ${root}; 2dfs-push build stores them there`);
      return;
    }
    const now = Date.now();
    const table = [["REFERENCE", "DIGEST", "PLATFORMS", "FIELD", "SIZE", "SHARED", "LAST USED"]];
    for (const i of r.images) {
      table.push([
        i.reference,
        shortDigest(i.digest),
        i.platforms.join(",") || "-",
        i.damaged
          ? `damaged: ${i.damaged}`
          : i.field
            ? `${i.field.rows}x${i.field.cols}, ${i.field.allotments} allotments`
            : "no field",
        formatBytes(i.bytes),
        formatBytes(i.sharedBytes),
        ago(now - Date.parse(i.lastUsed)),
      ]);
    }
    for (const line of alignColumns(table, [0, 1, 2, 3, 6])) out.line(line);
  });
}

function listImage(image: StoredImage, all: readonly StoredImage[]): ImageListing {
  const others = new Set(all.filter((o) => o !== image).flatMap((o) => [...o.blobs.keys()]));
  let bytes = 0;
  let sharedBytes = 0;
  for (const [d, size] of image.blobs) {
    bytes += size ?? 0;
    if (others.has(d)) sharedBytes += size ?? 0;
  }
  return {
    reference: image.reference,
    digest: image.digest,
    platforms: image.platforms,
    ...(image.field ? { field: image.field } : {}),
    bytes,
    sharedBytes,
    lastUsed: image.lastUsed.toISOString(),
    ...(image.damaged ? { damaged: image.damaged } : {}),
  };
}

/** `just now`, `5 minutes ago`, `3 days ago` */
export function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const units: [string, number][] = [
    ["day", 86_400],
    ["hour", 3_600],
    ["minute", 60],
    ["second", 1],
  ];
  if (s < 5) return "just now";
  for (const [unit, size] of units) {
    const n = Math.floor(s / size);
    if (n >= 1) return `${n} ${unit}${n === 1 ? "" : "s"} ago`;
  }
  return "just now";
}

export async function rmCommand(refs: string[], flags: StoreFlags): Promise<void> {
  const out = createOutput(flags.json === true);
  const root = storeRoot(flags);
  const targets = refs.map((r) => storedRef(r, root));
  await exclusiveStoreLock(`2dfs-push rm ${refs.join(" ")}`, async () => {
    // All or nothing: a typo in one name removes none of them.
    const missing: string[] = [];
    for (const t of targets) if (!(await isStored(t))) missing.push(t.name);
    if (missing.length) {
      throw new InputError(
        `not in the local image store ${root}: ${missing.join(", ")} (\`2dfs-push images\` lists it)`,
      );
    }
    for (const t of targets) {
      await (await OciLayout.open(t.dir)).untag(t.tag);
      await forgetUsage(t);
    }
    const plan = await planPrune(root, cacheDir());
    out.result({ removed: targets.map((t) => t.name), reclaimable: plan.bytes }, (r) => {
      for (const name of r.removed) out.line(`removed ${name}`);
      out.line(`2dfs-push prune frees ${formatBytes(r.reclaimable)} that no image references now`);
    });
  });
}

async function isStored(t: StoredRef): Promise<boolean> {
  return openStoredImage(t).then(
    () => true,
    (e: unknown) => {
      if (e instanceof InputError) return false;
      throw e;
    },
  );
}

export interface PruneFlags extends StoreFlags {
  dryRun?: boolean;
}

export interface PruneResult {
  dryRun: boolean;
  /** Bytes the disk gets back (or would, with --dry-run). */
  bytesFreed: number;
  blobs: number;
  cacheEntries: number;
  repositories: number;
}

export async function pruneCommand(flags: PruneFlags): Promise<void> {
  const out = createOutput(flags.json === true);
  const root = storeRoot(flags);
  const dryRun = flags.dryRun === true;
  const result = await exclusiveStoreLock(
    `2dfs-push prune${dryRun ? " --dry-run" : ""}`,
    async (): Promise<PruneResult> => {
      const plan = await planPrune(root, cacheDir());
      if (!dryRun) await applyPrune(plan, root);
      return {
        dryRun,
        bytesFreed: plan.bytes,
        blobs: plan.blobs.length,
        cacheEntries: plan.cacheEntries.length,
        repositories: plan.layouts.length,
      };
    },
  );
  out.result(result, (r) => {
    const what = `${r.blobs} blob file(s), ${r.cacheEntries} cache entr${r.cacheEntries === 1 ? "y" : "ies"}, ${r.repositories} empty repositor${r.repositories === 1 ? "y" : "ies"}`;
    out.line(`${r.dryRun ? "would free" : "freed"} ${formatBytes(r.bytesFreed)}: ${what}`);
  });
}

export async function duCommand(flags: StoreFlags): Promise<void> {
  const out = createOutput(flags.json === true);
  const root = storeRoot(flags);
  const layouts = await readStore(root);
  const usage = await diskUsage(root, cacheDir(), layouts);
  const reclaimable = (await planPrune(root, cacheDir(), layouts)).bytes;
  out.result<DiskUsage & { reclaimable: number }>({ ...usage, reclaimable }, (u) => {
    const s = u.store;
    const table = [
      [
        "images",
        `${s.images} in ${s.repositories} repositor${s.repositories === 1 ? "y" : "ies"}`,
        formatBytes(s.bytes),
        s.dir,
      ],
      [
        "cache",
        `${u.cache.blobs} allotments`,
        formatBytes(u.cache.bytes),
        `${u.cache.dir} (${formatBytes(u.cache.bytesOnlyInCache)} not in any image)`,
      ],
      ["total", "each file once", formatBytes(u.bytes), ""],
      ["prune", "would free", formatBytes(u.reclaimable), ""],
    ];
    for (const line of alignColumns(table, [0, 1, 3])) out.line(line);
  });
}
