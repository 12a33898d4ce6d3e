/**
 * Real 2DFS images for the end-to-end tests and the benchmark, built on the Node side and pushed
 * over HTTP as the reference builder would: per platform, ordinary base layers, then a field
 * whose allotments are real tar layers (gzip'd, zstd'd or plain) holding known files. The
 * config's `rootfs.diff_ids` lists the base layers only; the field is the manifest's last layer.
 *
 *   const img = await tdfsImage().platforms(["linux/amd64", "linux/arm64"]).grid(3, 3).hole(1, 1)
 *     .partition("edge", "1.0.2.1").write(dir);
 *   await pushTdfsImage(registry.url, "e2e/model", "v1", img);
 *
 * Every blob lives in an OCI image layout under `dir` (so the pushed bytes can be compared with
 * what comes back), and `flatImage` writes an ordinary image of the same blobs for comparison.
 */
import { readFile } from "node:fs/promises";
import pLimit from "p-limit";
import type { Digest } from "../../core/oci/digest.ts";
import type { Descriptor, ImageIndex, ImageManifest, Platform } from "../../core/oci/manifest.ts";
import { MediaType, type Compression } from "../../core/oci/media-types.ts";
import { NAMED_PARTITION_PREFIX } from "../../core/tdfs/label.ts";
import { fieldFromAllotments, serializeField } from "../../core/tdfs/field.ts";
import { OciLayout, parsePlatform, type FileSpec, type LayerBlob } from "./images.ts";
import { pushBlob } from "./oci.ts";

export type Cell = readonly [row: number, col: number];

export interface BuiltAllotment {
  row: number;
  col: number;
  layer: LayerBlob;
}

export interface BuiltTdfsPlatform {
  platform: Platform;
  /** `linux-amd64`: how file names spell the platform. */
  slug: string;
  base: LayerBlob[];
  /** Row-major. */
  allotments: BuiltAllotment[];
  field: Descriptor;
  config: Descriptor;
  manifest: Descriptor;
  /** Files of the base layers, sorted. */
  baseFiles: string[];
}

export interface BuiltTdfsImage {
  layout: OciLayout;
  platforms: BuiltTdfsPlatform[];
  index: Descriptor;
}

const FIXED_TIME = "2026-01-01T00:00:00Z";
/** Base layers per platform. */
const BASE_LAYERS = 2;
const BLOB_PUSH_CONCURRENCY = 4;

export function tdfsImage(): TdfsImageBuilder {
  return new TdfsImageBuilder();
}

export class TdfsImageBuilder {
  #platforms: Platform[] = [{ os: "linux", architecture: "amd64" }];
  #rows = 1;
  #cols = 1;
  #holes = new Set<string>();
  #partitions: Record<string, string> = {};
  #compressions = new Map<string, Compression>();
  #allotmentBytes = 4096;
  #name = "e2e/model";

  /** What the index annotation `2dfs.image.name` says, as the reference builder writes it. */
  name(name: string): this {
    this.#name = name;
    return this;
  }

  platforms(list: readonly string[]): this {
    this.#platforms = list.map(parsePlatform);
    return this;
  }

  /** A full `rows` x `cols` field, less the holes. */
  grid(rows: number, cols: number): this {
    this.#rows = rows;
    this.#cols = cols;
    return this;
  }

  hole(row: number, col: number): this {
    this.#holes.add(`${row},${col}`);
    return this;
  }

  /** A named partition, as the index annotation `2dfs.partition.<name>`. */
  partition(name: string, label: string): this {
    this.#partitions[name] = label;
    return this;
  }

  /** How one allotment's tar is stored (gzip by default). */
  compression(row: number, col: number, compression: Compression): this {
    this.#compressions.set(`${row},${col}`, compression);
    return this;
  }

  /** Size of the random data file in each allotment. */
  allotmentBytes(bytes: number): this {
    this.#allotmentBytes = bytes;
    return this;
  }

  cells(): Cell[] {
    const out: Cell[] = [];
    for (let r = 0; r < this.#rows; r++) {
      for (let c = 0; c < this.#cols; c++) if (!this.#holes.has(`${r},${c}`)) out.push([r, c]);
    }
    return out;
  }

  async write(dir: string): Promise<BuiltTdfsImage> {
    const layout = new OciLayout(dir);
    await layout.init();
    const platforms: BuiltTdfsPlatform[] = [];
    for (const platform of this.#platforms) {
      const slug = [platform.os, platform.architecture, platform.variant].filter(Boolean).join("-");
      const base: LayerBlob[] = [];
      for (let i = 0; i < BASE_LAYERS; i++) base.push(await layout.writeLayer(baseLayerFiles(slug, i)));
      const allotments: BuiltAllotment[] = [];
      for (const [row, col] of this.cells()) {
        const compression = this.#compressions.get(`${row},${col}`) ?? "gzip";
        // Level 0: the data is random, compressing it would only cost time.
        const layer = await layout.writeLayer(allotmentFiles(slug, row, col, this.#allotmentBytes), {
          compression,
          ...(compression === "gzip" ? { level: 0 } : {}),
        });
        allotments.push({ row, col, layer });
      }
      const field = await layout.writeBytes(fieldTextOf(allotments), MediaType.TdfsField);
      const config = await layout.writeJson(
        {
          created: FIXED_TIME,
          ...platform,
          config: { Env: ["PATH=/usr/bin:/bin"], Cmd: ["/bin/sh"] },
          rootfs: { type: "layers", diff_ids: base.map((l) => l.diffId) },
          history: base.map((_, i) => ({ created: FIXED_TIME, created_by: `base layer ${i}` })),
        },
        MediaType.OciConfig,
      );
      const manifestBody: ImageManifest = {
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config,
        layers: [...base.map((l) => l.descriptor), field],
        annotations: { "org.example.platform": slug },
      };
      const manifest = await layout.writeJson(manifestBody, MediaType.OciManifest);
      const baseFiles = [...new Set(base.flatMap((l) => l.files))].sort();
      platforms.push({ platform, slug, base, allotments, field, config, manifest, baseFiles });
    }
    const annotations: Record<string, string> = { "2dfs.image.name": this.#name };
    for (const [name, label] of Object.entries(this.#partitions))
      annotations[`${NAMED_PARTITION_PREFIX}${name}`] = label;
    const indexBody: ImageIndex = {
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: platforms.map((p) => ({ ...p.manifest, platform: p.platform })),
      annotations,
    };
    const index = await layout.writeJson(indexBody, MediaType.OciIndex);
    return { layout, platforms, index };
  }
}

/** Base layer `i`: a small text file and some data, named for the platform. */
function baseLayerFiles(slug: string, i: number): FileSpec[] {
  return [
    { path: `etc/base/${slug}-layer-${i}.txt`, content: `base layer ${i} of ${slug}\n` },
    { path: `usr/lib/base-${i}/${slug}.bin`, random: 32 * 1024 },
  ];
}

/** Allotment (row, col): one split of the model plus a note naming its platform and cell. */
function allotmentFiles(slug: string, row: number, col: number, bytes: number): FileSpec[] {
  return [
    { path: `model/part-${row}-${col}.bin`, random: bytes },
    { path: `model/${slug}/cell-${row}-${col}.txt`, content: `allotment (${row},${col}) for ${slug}\n` },
  ];
}

/** The allotments of `platform` at `cells`, in the field's row-major order. */
/** The field blob's text for `allotments`, as the reference builder writes it. */
export function fieldTextOf(allotments: readonly BuiltAllotment[]): string {
  return serializeField(
    fieldFromAllotments(
      allotments.map((a) => ({
        row: a.row,
        col: a.col,
        digest: a.layer.descriptor.digest.slice(7),
        diffid: a.layer.diffId.slice(7),
      })),
    ),
  );
}

export function allotmentsAt(p: BuiltTdfsPlatform, cells: readonly Cell[]): BuiltAllotment[] {
  const want = new Set(cells.map(([r, c]) => `${r},${c}`));
  const found = p.allotments.filter((a) => want.has(`${a.row},${a.col}`));
  if (found.length !== want.size) throw new Error(`cells ${[...want].join(" ")} are not all in the field of ${p.slug}`);
  return found;
}

/** Every file a runtime unpacks for `platform` when it pulls the partition `cells`, sorted. */
export function expectedFiles(p: BuiltTdfsPlatform, cells: readonly Cell[]): string[] {
  return [...new Set([...p.baseFiles, ...allotmentsAt(p, cells).flatMap((a) => a.layer.files)])].sort();
}

/** Pushes every blob (monolithic POST ?digest=), then the platform manifests by digest, then the index as `tag`. */
export async function pushTdfsImage(base: string, repo: string, tag: string, img: BuiltTdfsImage): Promise<void> {
  const blobs = new Set<Digest>();
  for (const p of img.platforms) {
    for (const d of [
      ...p.base.map((l) => l.descriptor),
      ...p.allotments.map((a) => a.layer.descriptor),
      p.field,
      p.config,
    ]) {
      blobs.add(d.digest);
    }
  }
  await pushBlobs(base, repo, img.layout, [...blobs]);
  for (const p of img.platforms) await pushManifest(base, repo, p.manifest.digest, img.layout, p.manifest);
  await pushManifest(base, repo, tag, img.layout, img.index);
}

/**
 * An ordinary image of the same blobs as the partition `cells`: per platform, the base layers and
 * the selected allotments with their diff_ids in the config, under `tag`. Its blobs are already
 * in the repository once the 2DFS image is pushed, so only configs and manifests are new.
 */
export async function pushFlatImage(
  base: string,
  repo: string,
  tag: string,
  img: BuiltTdfsImage,
  cells: readonly Cell[],
): Promise<Descriptor> {
  const entries: Descriptor[] = [];
  for (const p of img.platforms) {
    const layers = [...p.base, ...allotmentsAt(p, cells).map((a) => a.layer)];
    const config = await img.layout.writeJson(
      {
        created: FIXED_TIME,
        ...p.platform,
        config: { Env: ["PATH=/usr/bin:/bin"], Cmd: ["/bin/sh"] },
        rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
        history: layers.map((_, i) => ({ created: FIXED_TIME, created_by: `flat layer ${i}` })),
      },
      MediaType.OciConfig,
    );
    const manifest = await img.layout.writeJson(
      { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: layers.map((l) => l.descriptor) },
      MediaType.OciManifest,
    );
    await pushBlobs(base, repo, img.layout, [config.digest]);
    await pushManifest(base, repo, manifest.digest, img.layout, manifest);
    entries.push({ ...manifest, platform: p.platform });
  }
  const index = await img.layout.writeJson(
    { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: entries } satisfies ImageIndex,
    MediaType.OciIndex,
  );
  await pushManifest(base, repo, tag, img.layout, index);
  return index;
}

async function pushBlobs(base: string, repo: string, layout: OciLayout, digests: readonly Digest[]): Promise<void> {
  const limit = pLimit(BLOB_PUSH_CONCURRENCY);
  await Promise.all(
    digests.map((d) =>
      limit(async () => {
        const pushed = await pushBlob(base, repo, await layout.readBlob(d));
        if (pushed !== d) throw new Error(`blob ${d} was pushed as ${pushed}`);
      }),
    ),
  );
}

async function pushManifest(base: string, repo: string, ref: string, layout: OciLayout, d: Descriptor): Promise<void> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${ref}`, {
    method: "PUT",
    headers: { "Content-Type": d.mediaType },
    body: await readFile(layout.blobPath(d.digest)),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`pushing manifest ${repo}:${ref}: ${res.status} ${text}`);
  const digest = res.headers.get("docker-content-digest");
  if (digest !== d.digest) throw new Error(`manifest ${repo}:${ref} stored as ${digest}, pushed ${d.digest}`);
}
