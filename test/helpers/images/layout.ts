/**
 * Node's side of the test-image builder: an OCI image layout on disk (`oci-layout`, `index.json`,
 * `blobs/<alg>/<hex>`), which skopeo copies from as `oci:DIR:TAG` and which tests read back after a
 * copy. As a blob sink it streams each tar through node:zlib (gzip or zstd at the level asked) into
 * its file, hashing on the way, so a layer of gigabytes never sits in memory.
 */
import { createHash, type Hash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip, createZstdCompress, constants as zlibConstants } from "node:zlib";
import { algorithmOf, hexOf, type Digest, type DigestAlgorithm } from "../../../core/oci/digest.ts";
import type { Descriptor, ImageIndex } from "../../../core/oci/manifest.ts";
import { MediaType } from "../../../core/oci/media-types.ts";
import type { ImageBuilder } from "./builder.ts";
import { tarChunks } from "./tar.ts";
import type { BlobSink, BuiltImage, FileSpec, StoredBlob, Tar, TarOptions } from "./types.ts";

/** A blob in a layout: its bytes are read from `path` when asked for. */
export interface FileBlob extends StoredBlob {
  path: string;
}

/** An image written to a layout under a tag. */
export interface WrittenImage extends BuiltImage<FileBlob> {
  dir: string;
  tag: string;
  /** `oci:DIR:TAG`, as skopeo spells it. */
  ref: string;
  layout: OciLayout;
}

const REF_NAME = "org.opencontainers.image.ref.name";

/** Builds the image into the layout at `dir` (created if need be) and names it `tag` in index.json. */
export async function writeImage<P extends FileBlob = never>(
  dir: string | OciLayout,
  builder: ImageBuilder<P>,
  tag = "latest",
): Promise<WrittenImage> {
  const layout = typeof dir === "string" ? await OciLayout.create(dir) : dir;
  const img = await builder.build(layout);
  await layout.tag(img.descriptor, tag);
  return { ...img, dir: layout.dir, tag, ref: `oci:${layout.dir}:${tag}`, layout };
}

/** Reads the descriptor that a layout's index.json names `tag` (as skopeo wrote it). */
export async function layoutTop(dir: string, tag: string): Promise<Descriptor> {
  const index = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as ImageIndex;
  const found = index.manifests.find((m) => m.annotations?.[REF_NAME] === tag);
  if (!found) throw new Error(`no image tagged ${tag} in ${dir}/index.json`);
  return found;
}

export class OciLayout implements BlobSink<FileBlob> {
  readonly dir: string;
  #tmpCounter = 0;

  /** A layout to read (one skopeo wrote); `create` makes one to write into. */
  constructor(dir: string) {
    this.dir = dir;
  }

  static async create(dir: string): Promise<OciLayout> {
    await mkdir(join(dir, "blobs"), { recursive: true });
    await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    return new OciLayout(dir);
  }

  blobPath(digest: Digest): string {
    return join(this.dir, "blobs", algorithmOf(digest), hexOf(digest));
  }

  async readBlob(digest: Digest): Promise<Buffer> {
    return readFile(this.blobPath(digest));
  }

  /** Every sha256 blob in the layout, sorted. */
  async blobDigests(): Promise<Digest[]> {
    const names = await readdir(join(this.dir, "blobs", "sha256"));
    return names
      .filter((n) => /^[a-f0-9]{64}$/.test(n))
      .map((n) => `sha256:${n}` as Digest)
      .sort();
  }

  /** Names `top` `tag` in index.json, as skopeo's oci: transport expects; other names stay. */
  async tag(top: Descriptor, tag: string): Promise<void> {
    const path = join(this.dir, "index.json");
    const before = await readFile(path, "utf8").then(
      (text) => (JSON.parse(text) as ImageIndex).manifests,
      () => [],
    );
    const entry = { ...top, annotations: { ...top.annotations, [REF_NAME]: tag } };
    const manifests = [...before.filter((m) => m.annotations?.[REF_NAME] !== tag), entry];
    const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests };
    await writeFile(path, JSON.stringify(index));
  }

  async put(bytes: Uint8Array, mediaType: string, algorithm: DigestAlgorithm): Promise<FileBlob> {
    const digest = `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}` as Digest;
    await mkdir(join(this.dir, "blobs", algorithm), { recursive: true });
    await writeFile(this.blobPath(digest), bytes);
    return this.#blob(digest, bytes.byteLength, mediaType);
  }

  async putTar(
    files: readonly FileSpec[],
    options: TarOptions,
    mediaType: string,
    algorithm: DigestAlgorithm,
  ): Promise<Tar<FileBlob>> {
    await mkdir(join(this.dir, "blobs", algorithm), { recursive: true });
    const tmp = join(this.dir, "blobs", `.tmp-${process.pid}-${this.#tmpCounter++}`);
    const tarHash = new HashTap("sha256");
    const blobHash = new HashTap(algorithm);
    const stages: (NodeJS.ReadableStream | NodeJS.WritableStream)[] = [Readable.from(tarChunks(files)), tarHash];
    if (options.compression === "gzip") stages.push(createGzip({ level: options.level ?? 1 }));
    if (options.compression === "zstd") {
      const level = options.level ?? 3;
      stages.push(createZstdCompress({ params: { [zlibConstants.ZSTD_c_compressionLevel]: level } }));
    }
    stages.push(blobHash, createWriteStream(tmp));
    await pipeline(stages as [NodeJS.ReadableStream, ...NodeJS.WritableStream[]]);
    const digest = blobHash.digest();
    await rename(tmp, this.blobPath(digest));
    return { blob: this.#blob(digest, blobHash.bytes, mediaType), diffId: tarHash.digest() };
  }

  #blob(digest: Digest, size: number, mediaType: string): FileBlob {
    const path = this.blobPath(digest);
    return {
      descriptor: { mediaType, digest, size },
      digest,
      size,
      path,
      read: async () => new Uint8Array(await readFile(path)),
    };
  }
}

/** A pass-through stream that hashes and counts what flows by. */
class HashTap extends Transform {
  readonly #algorithm: DigestAlgorithm;
  readonly #hash: Hash;
  bytes = 0;

  constructor(algorithm: DigestAlgorithm) {
    super();
    this.#algorithm = algorithm;
    this.#hash = createHash(algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#hash.update(chunk);
    this.bytes += chunk.byteLength;
    cb(null, chunk);
  }

  digest(): Digest {
    return `${this.#algorithm}:${this.#hash.digest("hex")}` as Digest;
  }
}
