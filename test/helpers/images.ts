/**
 * A typed builder for realistic OCI images written as an OCI image layout on disk, which skopeo
 * copies with `oci:DIR:TAG`. Layers are real tars (optionally gzip'd or zstd'd) holding real files;
 * each config's `rootfs.diff_ids` matches its layers; a multi-platform image is an index whose
 * entries carry their platform. A test reads as a sentence:
 *
 *   const img = await ociImage().platforms(["linux/amd64", "linux/arm64"]).randomLayers(3, 1_000_000).write(dir);
 *
 * 2DFS tests add their field and allotments through `withLayers`, which appends layers (with or
 * without a diff_id) after the ordinary ones, and through the annotation setters.
 */
import { createHash, randomFillSync } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip, createZstdCompress, constants as zlibConstants } from "node:zlib";
import tar from "tar-stream";
import type { Digest } from "../../core/oci/digest.ts";
import type { Descriptor, ImageIndex, ImageManifest, Platform } from "../../core/oci/manifest.ts";
import { layerMediaTypeFor, MediaType, type Compression } from "../../core/oci/media-types.ts";

/** A file inside a layer: literal content, or `random` bytes generated while the tar streams. */
export interface FileSpec {
  path: string;
  content?: string | Uint8Array;
  random?: number;
  mode?: number;
}

export interface LayerOptions {
  compression?: Compression;
  /** gzip 0-9 (0 stores; random data does not shrink anyway), zstd 1-19. */
  level?: number;
}

export interface LayerBlob {
  descriptor: Descriptor;
  /** sha256 of the uncompressed tar (equals the digest for an uncompressed layer). */
  diffId: Digest;
  /** Paths of the regular files in the tar, sorted. */
  files: string[];
}

/** A layer appended by a hook: `diffId: null` leaves it out of rootfs.diff_ids (the 2DFS field). */
export interface ExtraLayer {
  descriptor: Descriptor;
  diffId: Digest | null;
}

export interface LayerHookContext {
  platform: Platform;
  blobs: OciLayout;
  /** The ordinary layers already built for this platform. */
  layers: readonly LayerBlob[];
}
export type LayerHook = (ctx: LayerHookContext) => Promise<ExtraLayer[]>;

export interface WrittenPlatform {
  platform: Platform;
  manifest: Descriptor;
  config: Descriptor;
  layers: ExtraLayer[];
  /** Every regular file the ordinary layers put in the filesystem (not those of hook layers), sorted. */
  files: string[];
}

export interface WrittenImage {
  dir: string;
  tag: string;
  /** `oci:DIR:TAG`, as skopeo spells it. */
  ref: string;
  /** The top-level object: the index, or the manifest of a single-manifest image. */
  top: Descriptor;
  platforms: WrittenPlatform[];
  /** Every blob of the image (layers, configs, manifests, index), each once. */
  digests: Digest[];
  /** Sum of the blob sizes. */
  totalBytes: number;
}

const FIXED_TIME = new Date("2026-01-01T00:00:00Z");

export function parsePlatform(s: string): Platform {
  const [os, architecture, variant] = s.split("/");
  if (!os || !architecture) throw new Error(`platform must be os/arch[/variant], got ${s}`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

/** The blob store of an OCI image layout: `oci-layout`, `index.json`, `blobs/sha256/<hex>`. */
export class OciLayout {
  readonly dir: string;
  #tmpCounter = 0;

  constructor(dir: string) {
    this.dir = dir;
  }

  async init(): Promise<void> {
    await mkdir(join(this.dir, "blobs", "sha256"), { recursive: true });
    await writeFile(join(this.dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  }

  blobPath(digest: Digest): string {
    return join(this.dir, "blobs", "sha256", digest.slice(7));
  }

  async writeBytes(bytes: Uint8Array | string, mediaType: string): Promise<Descriptor> {
    const buf = typeof bytes === "string" ? Buffer.from(bytes) : bytes;
    const digest: Digest = `sha256:${createHash("sha256").update(buf).digest("hex")}`;
    await writeFile(this.blobPath(digest), buf);
    return { mediaType, digest, size: buf.byteLength };
  }

  async writeJson(value: unknown, mediaType: string): Promise<Descriptor> {
    return this.writeBytes(JSON.stringify(value), mediaType);
  }

  /** Streams a tar of `files` (parents included, uid/gid 0, fixed mtime) through the compressor into the store. */
  async writeLayer(files: readonly FileSpec[], opts: LayerOptions = {}): Promise<LayerBlob> {
    const compression = opts.compression ?? "gzip";
    const tmp = join(this.dir, "blobs", `.tmp-${process.pid}-${this.#tmpCounter++}`);
    const tarHash = new HashTap();
    const blobHash = new HashTap();
    const pack = tar.pack();
    // tar-stream's pack is a streamx Readable: node's pipeline drives it, its types just differ.
    const stages: (NodeJS.ReadableStream | NodeJS.WritableStream)[] = [
      pack as unknown as NodeJS.ReadableStream,
      tarHash,
    ];
    if (compression === "gzip") stages.push(createGzip({ level: opts.level ?? 1 }));
    if (compression === "zstd") {
      stages.push(createZstdCompress({ params: { [zlibConstants.ZSTD_c_compressionLevel]: opts.level ?? 3 } }));
    }
    stages.push(blobHash, createWriteStream(tmp));
    const written = pipeline(stages as [NodeJS.ReadableStream, ...NodeJS.WritableStream[]]);
    const sorted = [...files].sort((a, b) => a.path.localeCompare(b.path));
    await Promise.all([written, packFiles(pack, sorted)]);
    const digest = blobHash.digest();
    await rename(tmp, this.blobPath(digest));
    return {
      descriptor: { mediaType: layerMediaTypeFor(compression), digest, size: blobHash.bytes },
      diffId: tarHash.digest(),
      files: sorted.map((f) => normalize(f.path)).sort(),
    };
  }

  async readBlob(digest: Digest): Promise<Buffer> {
    return readFile(this.blobPath(digest));
  }

  async blobDigests(): Promise<Digest[]> {
    const names = await readdir(join(this.dir, "blobs", "sha256"));
    return names
      .filter((n) => /^[a-f0-9]{64}$/.test(n))
      .map((n) => `sha256:${n}` as Digest)
      .sort();
  }

  /** Points the layout's index.json at `top` under the name `tag`, as skopeo's oci: transport expects. */
  async writeIndex(top: Descriptor, tag: string): Promise<void> {
    const entry = { ...top, annotations: { ...top.annotations, "org.opencontainers.image.ref.name": tag } };
    const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [entry] };
    await writeFile(join(this.dir, "index.json"), JSON.stringify(index));
  }
}

/** Reads the descriptor that a layout's index.json names `tag` (as skopeo wrote it). */
export async function layoutTop(dir: string, tag: string): Promise<Descriptor> {
  const index = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as ImageIndex;
  const found = index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === tag);
  if (!found) throw new Error(`no image tagged ${tag} in ${dir}/index.json`);
  return found;
}

export function ociImage(): OciImageBuilder {
  return new OciImageBuilder();
}

type LayerRecipe = (platform: Platform, index: number) => FileSpec[];

export class OciImageBuilder {
  #platforms: Platform[] = [{ os: "linux", architecture: "amd64" }];
  #recipes: LayerRecipe[] = [];
  #hooks: LayerHook[] = [];
  #layerOptions: LayerOptions = {};
  #tag = "latest";
  #asIndex: boolean | undefined;
  #indexAnnotations: Record<string, string> = {};
  #manifestAnnotations: Record<string, string> = {};
  #configExtra: Record<string, unknown> = {};

  platforms(list: readonly string[]): this {
    if (list.length === 0) throw new Error("an image needs at least one platform");
    this.#platforms = list.map(parsePlatform);
    return this;
  }

  /** `count` layers per platform, each about `bytes` of random files: distinct content per platform. */
  randomLayers(count: number, bytes: number): this {
    for (let i = 0; i < count; i++) {
      this.#recipes.push((platform, n) => randomLayerFiles(formatPlatform(platform).replaceAll("/", "-"), n, bytes));
    }
    return this;
  }

  /** A layer with these exact files on every platform (so every platform shares its blob). */
  layer(files: readonly FileSpec[]): this {
    this.#recipes.push(() => [...files]);
    return this;
  }

  compression(compression: Compression, level?: number): this {
    this.#layerOptions = level === undefined ? { compression } : { compression, level };
    return this;
  }

  /** Appends layers after the ordinary ones, per platform: the hook for 2DFS fields and allotments. */
  withLayers(hook: LayerHook): this {
    this.#hooks.push(hook);
    return this;
  }

  tag(tag: string): this {
    this.#tag = tag;
    return this;
  }

  /** Force an index (default: an index when there is more than one platform) or a single manifest. */
  index(asIndex: boolean): this {
    this.#asIndex = asIndex;
    return this;
  }

  indexAnnotations(a: Record<string, string>): this {
    this.#indexAnnotations = { ...this.#indexAnnotations, ...a };
    return this;
  }

  manifestAnnotations(a: Record<string, string>): this {
    this.#manifestAnnotations = { ...this.#manifestAnnotations, ...a };
    return this;
  }

  /** Extra top-level config fields (kept verbatim, e.g. to check nobody re-encodes the config). */
  configFields(extra: Record<string, unknown>): this {
    this.#configExtra = { ...this.#configExtra, ...extra };
    return this;
  }

  async write(dir: string): Promise<WrittenImage> {
    const asIndex = this.#asIndex ?? this.#platforms.length > 1;
    if (!asIndex && this.#platforms.length > 1) throw new Error("a single manifest has one platform");
    const layout = new OciLayout(dir);
    await layout.init();
    const digests = new Set<Digest>();
    let totalBytes = 0;
    const note = (d: Descriptor): void => {
      if (!digests.has(d.digest)) totalBytes += d.size;
      digests.add(d.digest);
    };

    const platforms: WrittenPlatform[] = [];
    for (const platform of this.#platforms) {
      const built: LayerBlob[] = [];
      for (const [i, recipe] of this.#recipes.entries()) {
        built.push(await layout.writeLayer(recipe(platform, i), this.#layerOptions));
      }
      const layers: ExtraLayer[] = built.map((l) => ({ descriptor: l.descriptor, diffId: l.diffId }));
      for (const hook of this.#hooks) layers.push(...(await hook({ platform, blobs: layout, layers: built })));
      const config = await layout.writeJson(imageConfig(platform, layers, this.#configExtra), MediaType.OciConfig);
      const manifestBody: ImageManifest = {
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config,
        layers: layers.map((l) => l.descriptor),
        ...(Object.keys(this.#manifestAnnotations).length ? { annotations: this.#manifestAnnotations } : {}),
      };
      const manifest = await layout.writeJson(manifestBody, MediaType.OciManifest);
      [config, manifest, ...layers.map((l) => l.descriptor)].forEach(note);
      platforms.push({ platform, manifest, config, layers, files: [...new Set(built.flatMap((l) => l.files))].sort() });
    }

    let top: Descriptor;
    if (asIndex) {
      const index: ImageIndex = {
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: platforms.map((p) => ({ ...p.manifest, platform: p.platform })),
        ...(Object.keys(this.#indexAnnotations).length ? { annotations: this.#indexAnnotations } : {}),
      };
      top = await layout.writeJson(index, MediaType.OciIndex);
      note(top);
    } else {
      top = platforms[0]!.manifest;
    }
    await layout.writeIndex(top, this.#tag);
    return {
      dir,
      tag: this.#tag,
      ref: `oci:${dir}:${this.#tag}`,
      top,
      platforms,
      digests: [...digests].sort(),
      totalBytes,
    };
  }
}

function imageConfig(platform: Platform, layers: readonly ExtraLayer[], extra: Record<string, unknown>): object {
  const withDiff = layers.filter((l) => l.diffId !== null);
  return {
    created: FIXED_TIME.toISOString(),
    ...platform,
    config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["/bin/sh"] },
    rootfs: { type: "layers", diff_ids: withDiff.map((l) => l.diffId) },
    history: withDiff.map((_, i) => ({ created: FIXED_TIME.toISOString(), created_by: `e2e layer ${i}` })),
    ...extra,
  };
}

/** A layer's worth of random files: a few data files sharing `bytes`, plus a small text file. */
function randomLayerFiles(tag: string, index: number, bytes: number): FileSpec[] {
  const parts = Math.max(1, Math.min(4, Math.ceil(bytes / 262_144)));
  const files: FileSpec[] = [{ path: `etc/e2e/${tag}-layer-${index}.txt`, content: `layer ${index} of ${tag}\n` }];
  let left = bytes;
  for (let p = 0; p < parts; p++) {
    const size = p === parts - 1 ? left : Math.floor(bytes / parts);
    left -= size;
    files.push({ path: `data/${tag}/layer-${index}/part-${p}.bin`, random: size });
  }
  return files;
}

function normalize(path: string): string {
  return path.replace(/^\/+/, "");
}

/** Writes the files, and every parent directory once before its children, into a tar pack. */
async function packFiles(pack: tar.Pack, files: readonly FileSpec[]): Promise<void> {
  const dirs = new Set<string>();
  const common = { uid: 0, gid: 0, uname: "", gname: "", mtime: FIXED_TIME };
  try {
    for (const f of files) {
      const path = normalize(f.path);
      const parts = path.split("/").slice(0, -1);
      for (let i = 1; i <= parts.length; i++) {
        const dir = parts.slice(0, i).join("/");
        if (dirs.has(dir)) continue;
        dirs.add(dir);
        await new Promise<void>((resolve, reject) =>
          pack.entry({ ...common, name: `${dir}/`, type: "directory", mode: 0o755 }, (e) =>
            e ? reject(e) : resolve(),
          ),
        );
      }
      const header = { ...common, name: path, type: "file" as const, mode: f.mode ?? 0o644 };
      if (f.random !== undefined) {
        await writeRandom(pack, { ...header, size: f.random }, f.random);
      } else {
        const body =
          typeof f.content === "string" ? Buffer.from(f.content) : Buffer.from(f.content ?? new Uint8Array());
        await new Promise<void>((resolve, reject) =>
          pack.entry({ ...header, size: body.byteLength }, body, (e) => (e ? reject(e) : resolve())),
        );
      }
    }
    pack.finalize();
  } catch (e) {
    pack.destroy(e as Error);
    throw e;
  }
}

async function writeRandom(pack: tar.Pack, header: Parameters<tar.Pack["entry"]>[0], size: number): Promise<void> {
  let entry!: ReturnType<tar.Pack["entry"]>;
  const done = new Promise<void>((resolve, reject) => {
    entry = pack.entry(header, (e) => (e ? reject(e) : resolve()));
  });
  for (let left = size; left > 0;) {
    const n = Math.min(left, 1 << 20);
    left -= n;
    // A fresh buffer per write: the tar stream may still hold the previous one.
    if (!entry.write(randomFillSync(Buffer.allocUnsafe(n))))
      await new Promise<void>((r) => entry.once("drain", () => r()));
  }
  entry.end(null);
  await done;
}

/** A pass-through stream that hashes and counts what flows by. */
class HashTap extends Transform {
  readonly #hash = createHash("sha256");
  bytes = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#hash.update(chunk);
    this.bytes += chunk.byteLength;
    cb(null, chunk);
  }

  digest(): Digest {
    return `sha256:${this.#hash.digest("hex")}`;
  }
}
