/**
 * What the test-image builder (builder.ts) makes, and where it puts blob bytes. Pure types: the
 * workerd tests, the Node unit and end-to-end tests and the benchmarks all read them.
 */
import type { Digest, DigestAlgorithm } from "../../../core/oci/digest.ts";
import type { Descriptor, Platform } from "../../../core/oci/manifest.ts";
import type { Compression } from "../../../core/oci/media-types.ts";
import type { Allotment } from "../../../core/tdfs/field.ts";

export type JsonObject = Record<string, unknown>;

/** A file inside a layer: literal content, or `random` bytes generated while the tar is written. */
export interface FileSpec {
  path: string;
  content?: string | Uint8Array;
  random?: number;
  mode?: number;
}

/** How a tar layer is stored: its compression, and for gzip (0-9) or zstd (1-19) a level where the sink has one. */
export interface TarOptions {
  compression: Compression;
  level?: number;
}

/** A stored blob, wherever its bytes are. */
export interface StoredBlob {
  descriptor: Descriptor;
  digest: Digest;
  size: number;
  read(): Promise<Uint8Array>;
}

/** A blob whose bytes are in memory: what every build in workerd makes. */
export interface MemoryBlob extends StoredBlob {
  bytes: Uint8Array;
}

/** Where a build puts its blobs: in memory (memory.ts), or in an OCI layout on disk (layout.ts, Node only). */
export interface BlobSink<B extends StoredBlob> {
  /** Stores bytes as they are: configs, manifests, fields and layers that are not tars. */
  put(bytes: Uint8Array, mediaType: string, algorithm: DigestAlgorithm): Promise<B>;
  /** Stores the tar of `files` (parents included, uid/gid 0, fixed mtime), compressed as asked. */
  putTar(
    files: readonly FileSpec[],
    options: TarOptions,
    mediaType: string,
    algorithm: DigestAlgorithm,
  ): Promise<Tar<B>>;
}

/** A stored tar layer: the blob, and the sha256 of the tar inside it. */
export interface Tar<B extends StoredBlob> {
  blob: B;
  diffId: Digest;
}

/** A layer of an image: its blob, what its config's `rootfs.diff_ids` lists for it, and what it holds. */
export type BuiltLayer<B extends StoredBlob = MemoryBlob> = B & {
  diffId: Digest;
  /** Paths of the regular files in the tar, sorted; empty for a layer that is not a tar. */
  files: string[];
};

/** One cell of a 2DFS field: the field's own entry (bare hex `digest` and `diffid`) and its layer. */
export interface BuiltAllotment<B extends StoredBlob = MemoryBlob> extends Allotment {
  layer: BuiltLayer<B>;
}

/** A manifest or index as pushed: its exact bytes, and what it refers to. */
export interface BuiltManifest<B extends StoredBlob = MemoryBlob> {
  mediaType: string;
  /** The exact bytes a push sends. */
  bytes: Uint8Array;
  json: JsonObject;
  digest: Digest;
  size: number;
  /** How an index, a referrer or the referrers API names this manifest. */
  descriptor: Descriptor;
  /** The platform an index lists it under (platform manifests only). */
  platform?: Platform;
  /** The blobs it needs: the config, then its layers (a field last), then the field's allotments. */
  blobs: B[];
  /** The manifests an index lists, pushed before it. */
  children: BuiltManifest<B>[];
}

/** One platform of a built image. */
export interface BuiltPlatform<B extends StoredBlob = MemoryBlob> {
  platform: Platform;
  /** `linux-amd64`: how file names spell the platform. */
  slug: string;
  manifest: BuiltManifest<B>;
  config: B;
  configJson: JsonObject;
  /** The ordinary layers (a 2DFS image's base layers), in order. */
  layers: BuiltLayer<B>[];
  /** The field blob of a 2DFS image. */
  field?: B;
  /** The field's allotments, row-major; empty for an ordinary image. */
  allotments: BuiltAllotment<B>[];
  /** Every regular file the ordinary layers put in the filesystem, sorted. */
  files: string[];
}

/** A whole image: its top manifest (an index, or the one platform manifest) and every platform. */
export interface BuiltImage<B extends StoredBlob = MemoryBlob> extends BuiltManifest<B> {
  platforms: BuiltPlatform<B>[];
  /** The index, when the image is one. */
  index?: BuiltManifest<B>;
  /** Every object of the image (blobs, manifests and index), each once, sorted: what an OCI layout of it holds. */
  digests: Digest[];
  /** Sum of the sizes of those objects. */
  totalBytes: number;
}
