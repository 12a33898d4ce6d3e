/**
 * `export REF--x1.y1.x2.y2[--...] DEST`: a partition as an ordinary OCI image, the same one a
 * registry would answer the semantic tag with (core/tdfs/partition.ts builds both), written as
 * an OCI layout directory or, for a DEST ending in .tar, an OCI archive of one.
 */
import { mkdtemp, rm } from "node:fs/promises";
import path from "node:path";
import type { Digest } from "../../../core/oci/digest.ts";
import { LabelError, namedPartitions, parseLabel, selectAllotments, type Rect } from "../../../core/tdfs/label.ts";
import { partitionIndex, partitionManifest, type AllotmentFacts } from "../../../core/tdfs/partition.ts";
import { loadImage } from "../store/graph.ts";
import { OciLayout } from "../store/layout.ts";
import { layerMediaTypeOfFile } from "../store/sniff.ts";
import { LayoutSource, type ImageSource } from "../store/source.ts";
import { InputError } from "../spec/errors.ts";
import { writeLayoutArchive } from "./archive.ts";
import type { Platform } from "../../../core/oci/manifest.ts";

export interface ExportResult {
  dest: string;
  format: "oci-layout" | "oci-archive";
  digest: Digest;
  tag: string;
  /** Selected allotments per platform manifest. */
  platforms: {
    platform: Platform;
    allotments: { row: number; col: number; digest: Digest; size: number; mediaType: string }[];
  }[];
}

export interface ExportInput {
  source: ImageSource;
  reference: string;
  label: string;
  /** The name the output is tagged with in its index.json. */
  tag: string;
  dest: string;
  platforms?: Platform[];
}

export async function exportPartition(input: ExportInput): Promise<ExportResult> {
  const archive = input.dest.endsWith(".tar");
  const dir = archive ? await mkdtemp(path.join(path.dirname(path.resolve(input.dest)), ".2dfs-export-")) : input.dest;
  try {
    const layout = await OciLayout.create(dir);
    const result = await writePartition(input, layout);
    if (archive) await writeLayoutArchive(dir, input.dest);
    return { ...result, dest: input.dest, format: archive ? "oci-archive" : "oci-layout" };
  } finally {
    if (archive) await rm(dir, { recursive: true, force: true });
  }
}

async function writePartition(input: ExportInput, out: OciLayout): Promise<Omit<ExportResult, "dest" | "format">> {
  const { source } = input;
  const graph = await loadImage(source, input.reference, input.platforms ?? []);
  let rects: Rect[];
  try {
    rects = parseLabel(input.label, namedPartitions(graph.index?.annotations));
  } catch (e) {
    if (e instanceof LabelError) throw new InputError(e.message);
    throw e;
  }
  if (graph.platforms.some((p) => !p.field))
    throw new InputError(`${source.name}: not a 2DFS image (a manifest has no field layer)`);
  if (graph.platforms.every((p) => selectAllotments(p.field!.field, rects).length === 0)) {
    throw new InputError(`"${input.label}" selects no allotment of this image`);
  }

  const rewritten = new Map<string, { digest: Digest; size: number }>();
  const platforms: ExportResult["platforms"] = [];
  let single: { digest: Digest; size: number; mediaType: string } | undefined;
  for (const p of graph.platforms) {
    const field = p.field!.field;
    const selected = selectAllotments(field, rects);
    const base = [p.manifest.config, ...p.manifest.layers.slice(0, -1)].filter((d) => !d.urls?.length);
    const facts = new Map<string, AllotmentFacts>();
    for (const d of base) await copyBlob(source, out, d.digest);
    for (const a of selected) {
      const digest = `sha256:${a.digest}` as Digest;
      const size = await copyBlob(source, out, digest);
      facts.set(digest, { size, mediaType: await layerMediaTypeOfFile(out.blobPath(digest)) });
    }
    const part = await partitionManifest({
      manifest: p.manifest,
      manifestBytes: p.manifestBytes,
      configBytes: p.configBytes,
      field,
      facts,
      selection: rects,
      allowEmpty: true,
    });
    if (part.kind !== "partition") throw new Error("unreachable: allowEmpty always partitions");
    await out.writeBytes(part.config.bytes);
    await out.writeBytes(part.manifest.bytes);
    rewritten.set(p.descriptor.digest, { digest: part.manifest.digest, size: part.manifest.size });
    single = { digest: part.manifest.digest, size: part.manifest.size, mediaType: p.descriptor.mediaType };
    platforms.push({
      platform: p.platform,
      allotments: part.allotments.map((a) => {
        const digest = `sha256:${a.digest}` as Digest;
        const f = facts.get(digest)!;
        return { row: a.row, col: a.col, digest, size: f.size, mediaType: f.mediaType };
      }),
    });
  }

  let root: { digest: Digest; size: number; mediaType: string };
  if (graph.index) {
    const index = await partitionIndex(graph.root.bytes, rewritten);
    await out.writeBytes(index.bytes);
    root = { digest: index.digest, size: index.size, mediaType: graph.root.mediaType };
  } else {
    root = single!;
  }
  await out.tag(input.tag, root);
  return { digest: root.digest, tag: input.tag, platforms };
}

/** Copies a blob into the output: a hard link from a local layout, else streamed and verified. */
async function copyBlob(source: ImageSource, out: OciLayout, digest: Digest): Promise<number> {
  if (source instanceof LayoutSource) {
    await out.adopt(source.layout.blobPath(digest), digest);
    return (await out.blobSize(digest))!;
  }
  return out.writeStream(digest, await source.openBlob(digest));
}
