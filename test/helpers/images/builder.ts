/**
 * The one builder of test images, for unit, workerd and end-to-end tests and the benchmarks. An
 * image reads as a sentence:
 *
 *   const app = await anImage().randomLayers(1).pushTo(worker, repo, "v1");
 *   const multi = await anIndex().of(amd64, arm64).pushTo(worker, repo, "multi");
 *   const sbom = await anImage().artifactType(SBOM).subject(app.descriptor).pushTo(worker, repo);
 *   const model = await anImage().platforms(["linux/amd64", "linux/arm64"]).randomLayers(2, 32 * 1024)
 *     .grid(3, 3).hole(1, 1).allotment(0, 1, { compression: "zstd" }).partition("edge", "1.0.2.1")
 *     .build(await OciLayout.create(dir));
 *
 * Layers are real tars of real files (tar.ts), so runtimes can unpack them; a 2DFS image carries a
 * field (docs/format.md §2-3) whose allotments are tars too, unless a test asks for one that is not.
 * Every build has random content and a config nonce of its own, so two images built alike differ.
 * Manifests are written with unusual indentation: a registry that re-encoded them instead of
 * serving the pushed bytes would be caught. Names, annotations and partition labels are not
 * checked, so that tests can build hostile ones.
 *
 * Where the blobs go is the sink's business: in memory by default (memory.ts, the only one in
 * workerd), or an OCI image layout on disk that skopeo reads (layout.ts, Node). push.ts sends a
 * built image to any registry.
 */
import { hexOf, type Digest, type DigestAlgorithm } from "../../../core/oci/digest.ts";
import type { Descriptor, Platform } from "../../../core/oci/manifest.ts";
import { layerMediaTypeFor, MediaType, type Compression } from "../../../core/oci/media-types.ts";
import { fieldFromAllotments, serializeField } from "../../../core/tdfs/field.ts";
import { NAMED_PARTITION_PREFIX } from "../../../core/tdfs/label.ts";
import { MemoryBlobs } from "./memory.ts";
import { parsePlatform, platformSlug } from "./platform.ts";
import { push, type RegistryTarget } from "./push.ts";
import { TAR_MTIME, tarFiles } from "./tar.ts";
import type {
  BlobSink,
  BuiltAllotment,
  BuiltImage,
  BuiltLayer,
  BuiltManifest,
  BuiltPlatform,
  FileSpec,
  JsonObject,
  MemoryBlob,
  StoredBlob,
} from "./types.ts";

/** Annotations for every platform alike, or per platform. */
export type Annotations = Record<string, string> | ((platform: Platform, slug: string) => Record<string, string>);

export interface AllotmentOptions {
  /** How the allotment's tar is stored (gzip by default). */
  compression?: Compression;
  /** Random bytes that are not a tar at all, stored as they are: for readers that must say so. */
  opaque?: boolean;
}

/** Spaces of indentation in every manifest and index. */
const MANIFEST_INDENT = 3;
const CREATED = TAR_MTIME.toISOString();
const DEFAULT_ALLOTMENT_BYTES = 4096;
const DEFAULT_NAME = "test/model";

type LayerSource<P extends StoredBlob> =
  | { files: (slug: string, index: number) => FileSpec[] }
  | { prebuilt: (platform: Platform) => readonly BuiltLayer<P>[] };

export function anImage(): ImageBuilder {
  return new ImageBuilder();
}

export function anIndex(): IndexBuilder {
  return new IndexBuilder();
}

/** `P` is the kind of blob that layers taken from another build are stored as. */
export class ImageBuilder<P extends StoredBlob = never> {
  #platforms: Platform[] = [{ os: "linux", architecture: "amd64" }];
  #layers: LayerSource<P>[] = [];
  #compression: Compression = "gzip";
  #level: number | undefined = 1;
  #docker = false;
  #algorithm: DigestAlgorithm = "sha256";
  #asIndex: boolean | undefined;
  #artifactType: string | undefined;
  #configMediaType: string | undefined;
  #subject: Descriptor | undefined;
  #manifestAnnotations: Annotations[] = [];
  #entryAnnotations: Annotations[] = [];
  #indexAnnotations: Record<string, string> = {};
  #configFields: JsonObject = {};
  // The field of a 2DFS image.
  #cells = new Map<string, AllotmentOptions & { row: number; col: number }>();
  #prebuiltCells: ((platform: Platform) => readonly BuiltAllotment<P>[])[] = [];
  #allotmentBytes = DEFAULT_ALLOTMENT_BYTES;
  #sharedField = false;
  #partitions: Record<string, string> = {};
  #name: string | undefined;

  /** `os/arch[/variant]` each; one linux/amd64 platform by default. */
  platforms(list: readonly string[]): this {
    if (list.length === 0) throw new Error("an image needs at least one platform");
    this.#platforms = list.map(parsePlatform);
    return this;
  }

  /** `count` layers per platform, each about `bytes` of random files named for the platform. */
  randomLayers(count: number, bytes = 1024): this {
    for (let i = 0; i < count; i++) this.#layers.push({ files: (slug, n) => randomLayerFiles(slug, n, bytes) });
    return this;
  }

  /** A layer with these exact files on every platform, so that every platform shares its blob. */
  layer(files: readonly FileSpec[]): this {
    this.#layers.push({ files: () => [...files] });
    return this;
  }

  /** Layers another build stored already, per platform, kept as they are (the same blobs). */
  layersFrom<Q extends StoredBlob>(layers: (platform: Platform) => readonly BuiltLayer<Q>[]): ImageBuilder<P | Q> {
    const self = this as unknown as ImageBuilder<P | Q>;
    self.#layers.push({ prebuilt: layers });
    return self;
  }

  /** How the ordinary layers are compressed (gzip level 1 by default). */
  compression(compression: Compression, level?: number): this {
    this.#compression = compression;
    this.#level = level;
    return this;
  }

  /** Docker schema 2 media types instead of OCI ones. */
  asDocker(): this {
    this.#docker = true;
    return this;
  }

  /** Digests of another algorithm for every blob and manifest (`sha512`). */
  digestAlgorithm(algorithm: DigestAlgorithm): this {
    this.#algorithm = algorithm;
    return this;
  }

  /** Force an index or a single manifest. By default an image is an index when it has several platforms or a field. */
  index(asIndex: boolean): this {
    this.#asIndex = asIndex;
    return this;
  }

  artifactType(artifactType: string): this {
    this.#artifactType = artifactType;
    return this;
  }

  /** An artifact whose type is told only by its config's media type, as older referrers do. */
  configMediaType(mediaType: string): this {
    this.#configMediaType = mediaType;
    return this;
  }

  subject(subject: Descriptor): this {
    this.#subject = subject;
    return this;
  }

  manifestAnnotations(annotations: Annotations): this {
    this.#manifestAnnotations.push(annotations);
    return this;
  }

  /** Annotations of each platform's entry in the index. */
  entryAnnotations(annotations: Annotations): this {
    this.#entryAnnotations.push(annotations);
    return this;
  }

  indexAnnotations(annotations: Record<string, string>): this {
    this.#indexAnnotations = { ...this.#indexAnnotations, ...annotations };
    return this;
  }

  /** Extra top-level config members, kept verbatim (to check that nobody re-encodes the config). */
  configFields(fields: JsonObject): this {
    this.#configFields = { ...this.#configFields, ...fields };
    return this;
  }

  /** A 2DFS field: every cell of a `rows` x `cols` grid holds an allotment, less the holes. */
  grid(rows: number, cols: number): this {
    for (let row = 0; row < rows; row++) for (let col = 0; col < cols; col++) this.allotment(row, col);
    return this;
  }

  hole(row: number, col: number): this {
    this.#cells.delete(`${row},${col}`);
    return this;
  }

  /** An allotment at (row, col), or how the grid's allotment there is stored. */
  allotment(row: number, col: number, options: AllotmentOptions = {}): this {
    const key = `${row},${col}`;
    this.#cells.set(key, { ...this.#cells.get(key), ...options, row, col });
    return this;
  }

  /** Allotments another build stored already, per platform, kept in the field as they are. */
  allotmentsFrom<Q extends StoredBlob>(
    allotments: (platform: Platform) => readonly BuiltAllotment<Q>[],
  ): ImageBuilder<P | Q> {
    const self = this as unknown as ImageBuilder<P | Q>;
    self.#prebuiltCells.push(allotments);
    return self;
  }

  /** An allotment at (row, col) on every platform that is a layer built before (one another image shares). */
  allotmentFrom<Q extends StoredBlob>(row: number, col: number, layer: BuiltLayer<Q>): ImageBuilder<P | Q> {
    const allotment = { row, col, digest: hexOf(layer.digest), diffid: hexOf(layer.diffId), layer };
    return this.allotmentsFrom(() => [allotment]);
  }

  /** Size of the random data file in each allotment. */
  allotmentBytes(bytes: number): this {
    this.#allotmentBytes = bytes;
    return this;
  }

  /** Every platform lists the same allotments, so its manifests share one field blob. */
  sharedField(): this {
    this.#sharedField = true;
    return this;
  }

  /** A named partition: the annotation `2dfs.partition.<name>` on the index (or on a single manifest). */
  partition(name: string, label: string): this {
    this.#partitions[name] = label;
    return this;
  }

  /** What the annotation `2dfs.image.name` says, as the reference builder writes it (test/model by default). */
  name(name: string): this {
    this.#name = name;
    return this;
  }

  /** The cells of the field that get new allotments, row-major. */
  cells(): [row: number, col: number][] {
    return [...this.#cells.values()].sort((a, b) => a.row - b.row || a.col - b.col).map((c) => [c.row, c.col]);
  }

  /** Builds into memory, or into `sink`. */
  build(): Promise<BuiltImage<MemoryBlob | P>>;
  build<B extends StoredBlob>(sink: BlobSink<B>): Promise<BuiltImage<B | P>>;
  async build<B extends StoredBlob>(sink?: BlobSink<B>): Promise<BuiltImage<B | P>> {
    return this.#build((sink ?? new MemoryBlobs()) as BlobSink<B>);
  }

  /** Builds in memory and pushes the image as `reference` (by default its digest). */
  async pushTo(target: RegistryTarget, repo: string, reference?: string): Promise<BuiltImage<MemoryBlob | P>> {
    const img = await this.build();
    await push(target, repo, img, reference);
    return img;
  }

  async #build<B extends StoredBlob>(sink: BlobSink<B | P>): Promise<BuiltImage<B | P>> {
    const hasField = this.#cells.size > 0 || this.#prebuiltCells.length > 0;
    if (hasField && this.#algorithm !== "sha256") throw new Error("a 2DFS field names sha256 digests only");
    const asIndex = this.#asIndex ?? (this.#platforms.length > 1 || hasField);
    if (!asIndex && this.#platforms.length > 1) throw new Error("a single manifest has one platform");
    const shared = this.#sharedField ? await this.#allotments(sink, this.#platforms[0]!, "all-platforms") : undefined;

    const platforms: BuiltPlatform<B | P>[] = [];
    for (const platform of this.#platforms) {
      const slug = platformSlug(platform);
      const layers = await this.#ordinaryLayers(sink, platform, slug);
      const allotments = hasField ? (shared ?? (await this.#allotments(sink, platform, slug))) : [];
      const field = hasField ? await this.#put(sink, fieldText(allotments), MediaType.TdfsField) : undefined;
      const configJson = this.#config(platform, layers);
      const config = await this.#put(sink, JSON.stringify(configJson), this.#configType());
      const annotations = {
        ...merged(this.#manifestAnnotations, platform, slug),
        ...(hasField && !asIndex ? this.#tdfsAnnotations() : {}),
      };
      const json: JsonObject = {
        schemaVersion: 2,
        mediaType: this.#manifestType(),
        ...(this.#artifactType ? { artifactType: this.#artifactType } : {}),
        config: config.descriptor,
        layers: [...layers.map((l) => l.descriptor), ...(field ? [field.descriptor] : [])],
        ...(this.#subject ? { subject: this.#subject } : {}),
        ...(Object.keys(annotations).length ? { annotations } : {}),
      };
      const blobs = [config, ...layers, ...(field ? [field] : []), ...allotments.map((a) => a.layer)];
      const manifest = await this.#manifest(sink, json, blobs, [], platform);
      const files = [...new Set(layers.flatMap((l) => l.files))].sort();
      platforms.push({ platform, slug, manifest, config, configJson, layers, field, allotments, files });
    }

    let index: BuiltManifest<B | P> | undefined;
    if (asIndex) {
      const annotations = { ...(hasField ? this.#tdfsAnnotations() : {}), ...this.#indexAnnotations };
      const json: JsonObject = {
        schemaVersion: 2,
        mediaType: this.#docker ? MediaType.DockerManifestList : MediaType.OciIndex,
        ...(this.#artifactType ? { artifactType: this.#artifactType } : {}),
        manifests: platforms.map((p) => {
          const entry = merged(this.#entryAnnotations, p.platform, p.slug);
          return {
            ...p.manifest.descriptor,
            platform: p.platform,
            ...(Object.keys(entry).length ? { annotations: entry } : {}),
          };
        }),
        ...(this.#subject ? { subject: this.#subject } : {}),
        ...(Object.keys(annotations).length ? { annotations } : {}),
      };
      index = await this.#manifest(
        sink,
        json,
        [],
        platforms.map((p) => p.manifest),
        undefined,
      );
    }
    const top = index ?? platforms[0]!.manifest;
    const objects = new Map<Digest, number>();
    for (const p of platforms) for (const b of [...p.manifest.blobs, p.manifest]) objects.set(b.digest, b.size);
    if (index) objects.set(index.digest, index.size);
    return {
      ...top,
      platforms,
      ...(index ? { index } : {}),
      digests: [...objects.keys()].sort(),
      totalBytes: [...objects.values()].reduce((n, s) => n + s, 0),
    };
  }

  async #ordinaryLayers<B extends StoredBlob>(
    sink: BlobSink<B | P>,
    platform: Platform,
    slug: string,
  ): Promise<BuiltLayer<B | P>[]> {
    const out: BuiltLayer<B | P>[] = [];
    for (const source of this.#layers) {
      if ("prebuilt" in source) {
        out.push(...source.prebuilt(platform));
        continue;
      }
      if (this.#docker && this.#compression !== "gzip") throw new Error("Docker schema 2 layers here are gzip");
      const files = source.files(slug, out.length);
      const mediaType = this.#docker ? MediaType.DockerLayerGzip : layerMediaTypeFor(this.#compression);
      const options = { compression: this.#compression, ...(this.#level === undefined ? {} : { level: this.#level }) };
      const { blob, diffId } = await sink.putTar(files, options, mediaType, this.#algorithm);
      out.push({ ...blob, diffId, files: tarFiles(files) });
    }
    return out;
  }

  async #allotments<B extends StoredBlob>(
    sink: BlobSink<B | P>,
    platform: Platform,
    slug: string,
  ): Promise<BuiltAllotment<B | P>[]> {
    const prebuilt = this.#prebuiltCells.flatMap((cells) => cells(platform));
    const fresh: BuiltAllotment<B | P>[] = [];
    for (const [row, col] of this.cells()) {
      const options = this.#cells.get(`${row},${col}`)!;
      const layer = await this.#allotmentLayer(sink, slug, row, col, options);
      fresh.push({ row, col, digest: hexOf(layer.digest), diffid: hexOf(layer.diffId), layer });
    }
    const taken = new Set(fresh.map((a) => `${a.row},${a.col}`));
    return [...prebuilt.filter((a) => !taken.has(`${a.row},${a.col}`)), ...fresh].sort(
      (a, b) => a.row - b.row || a.col - b.col,
    );
  }

  async #allotmentLayer<B extends StoredBlob>(
    sink: BlobSink<B | P>,
    slug: string,
    row: number,
    col: number,
    options: AllotmentOptions,
  ): Promise<BuiltLayer<B | P>> {
    if (options.opaque) {
      const bytes = new Uint8Array(this.#allotmentBytes);
      for (let at = 0; at < bytes.byteLength; at += 65_536) crypto.getRandomValues(bytes.subarray(at, at + 65_536));
      const blob = await sink.put(bytes, MediaType.OciLayerTar, this.#algorithm);
      return { ...blob, diffId: blob.digest, files: [] };
    }
    const compression = options.compression ?? "gzip";
    const files = allotmentFiles(slug, row, col, this.#allotmentBytes);
    // Level 0: the data is random, compressing it would only cost time.
    const tarOptions = { compression, ...(compression === "gzip" ? { level: 0 } : {}) };
    const { blob, diffId } = await sink.putTar(files, tarOptions, layerMediaTypeFor(compression), this.#algorithm);
    return { ...blob, diffId, files: tarFiles(files) };
  }

  #tdfsAnnotations(): Record<string, string> {
    const out: Record<string, string> = { "2dfs.image.name": this.#name ?? DEFAULT_NAME };
    for (const [name, label] of Object.entries(this.#partitions)) out[`${NAMED_PARTITION_PREFIX}${name}`] = label;
    return out;
  }

  #config(platform: Platform, layers: readonly BuiltLayer<StoredBlob>[]): JsonObject {
    return {
      created: CREATED,
      ...platform,
      config: { Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Cmd: ["/bin/sh"] },
      rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
      history: layers.map((_, i) => ({ created: CREATED, created_by: `test layer ${i}` })),
      // Not a label: the web view shows labels, and tests read what it shows.
      nonce: crypto.randomUUID(),
      ...this.#configFields,
    };
  }

  #configType(): string {
    return this.#configMediaType ?? (this.#docker ? MediaType.DockerConfig : MediaType.OciConfig);
  }

  #manifestType(): string {
    return this.#docker ? MediaType.DockerManifest : MediaType.OciManifest;
  }

  #put<B extends StoredBlob>(sink: BlobSink<B>, text: string, mediaType: string): Promise<B> {
    return sink.put(new TextEncoder().encode(text), mediaType, this.#algorithm);
  }

  #manifest<B extends StoredBlob>(
    sink: BlobSink<B>,
    json: JsonObject,
    blobs: B[],
    children: BuiltManifest<B>[],
    platform: Platform | undefined,
  ): Promise<BuiltManifest<B>> {
    return storeManifest(sink, json, blobs, children, platform, this.#algorithm);
  }
}

/** One gzip'd tar layer of `bytes` random data, built on its own in memory: for images that share layers. */
export async function randomLayer(bytes = 2048): Promise<BuiltLayer> {
  const files = [{ path: "data/random.bin", random: bytes }];
  const tar = await new MemoryBlobs().putTar(files, { compression: "gzip" }, MediaType.OciLayerGzip, "sha256");
  return { ...tar.blob, diffId: tar.diffId, files: tarFiles(files) };
}

/** An index over images built before, which it pushes first; `B` is the kind of blob they are stored as. */
export class IndexBuilder<B extends StoredBlob = never> {
  #children: BuiltManifest<B>[] = [];
  #docker = false;
  #artifactType: string | undefined;
  #subject: Descriptor | undefined;
  #annotations: Record<string, string> | undefined;

  /** The manifests the index lists, each under its platform when it has one. */
  of<Q extends StoredBlob>(...children: BuiltManifest<Q>[]): IndexBuilder<B | Q> {
    const self = this as unknown as IndexBuilder<B | Q>;
    self.#children.push(...children);
    return self;
  }

  asDocker(): this {
    this.#docker = true;
    return this;
  }

  artifactType(artifactType: string): this {
    this.#artifactType = artifactType;
    return this;
  }

  subject(subject: Descriptor): this {
    this.#subject = subject;
    return this;
  }

  annotations(annotations: Record<string, string>): this {
    this.#annotations = annotations;
    return this;
  }

  async build(): Promise<BuiltManifest<B>> {
    const json: JsonObject = {
      schemaVersion: 2,
      mediaType: this.#docker ? MediaType.DockerManifestList : MediaType.OciIndex,
      ...(this.#artifactType ? { artifactType: this.#artifactType } : {}),
      manifests: this.#children.map((c) => (c.platform ? { ...c.descriptor, platform: c.platform } : c.descriptor)),
      ...(this.#subject ? { subject: this.#subject } : {}),
      ...(this.#annotations ? { annotations: this.#annotations } : {}),
    };
    // An index references no blob: only its own bytes need storing, and memory is enough for them.
    const stored = await storeManifest(new MemoryBlobs(), json, [], [], undefined, "sha256");
    return { ...stored, blobs: [], children: this.#children };
  }

  async pushTo(target: RegistryTarget, repo: string, reference?: string): Promise<BuiltManifest<B>> {
    const index = await this.build();
    await push(target, repo, index, reference);
    return index;
  }
}

async function storeManifest<B extends StoredBlob>(
  sink: BlobSink<B>,
  json: JsonObject,
  blobs: B[],
  children: BuiltManifest<B>[],
  platform: Platform | undefined,
  algorithm: DigestAlgorithm,
): Promise<BuiltManifest<B>> {
  const mediaType = json.mediaType as string;
  const bytes = new TextEncoder().encode(JSON.stringify(json, null, MANIFEST_INDENT));
  const stored = await sink.put(bytes, mediaType, algorithm);
  const descriptor: Descriptor = { ...stored.descriptor };
  if (typeof json.artifactType === "string") descriptor.artifactType = json.artifactType;
  return {
    mediaType,
    bytes,
    json,
    digest: stored.digest,
    size: stored.size,
    descriptor,
    ...(platform ? { platform } : {}),
    blobs,
    children,
  };
}

function merged(list: readonly Annotations[], platform: Platform, slug: string): Record<string, string> {
  return Object.assign({}, ...list.map((a) => (typeof a === "function" ? a(platform, slug) : a)));
}

/** The field blob's text for `allotments`, as the reference builder writes it (docs/format.md §2). */
export function fieldText(allotments: readonly BuiltAllotment<StoredBlob>[]): string {
  return serializeField(
    fieldFromAllotments(allotments.map(({ row, col, digest, diffid }) => ({ row, col, digest, diffid }))),
  );
}

/** A layer's worth of random files: a few data files sharing `bytes`, plus a small text file. */
function randomLayerFiles(slug: string, index: number, bytes: number): FileSpec[] {
  const parts = Math.max(1, Math.min(4, Math.ceil(bytes / 262_144)));
  const files: FileSpec[] = [{ path: `etc/test/${slug}-layer-${index}.txt`, content: `layer ${index} of ${slug}\n` }];
  let left = bytes;
  for (let p = 0; p < parts; p++) {
    const size = p === parts - 1 ? left : Math.floor(bytes / parts);
    left -= size;
    files.push({ path: `data/${slug}/layer-${index}/part-${p}.bin`, random: size });
  }
  return files;
}

/** Allotment (row, col): one split of the model, plus a note naming its platform and cell. */
function allotmentFiles(slug: string, row: number, col: number, bytes: number): FileSpec[] {
  return [
    { path: `model/part-${row}-${col}.bin`, random: bytes },
    { path: `model/${slug}/cell-${row}-${col}.txt`, content: `allotment (${row},${col}) for ${slug}\n` },
  ];
}
