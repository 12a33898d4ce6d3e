/**
 * An OCI image layout on disk (image-spec "image-layout.md"):
 *
 *   <dir>/oci-layout              {"imageLayoutVersion":"1.0.0"}
 *   <dir>/index.json              an image index; entries tagged by org.opencontainers.image.ref.name
 *   <dir>/blobs/sha256/<hex>      every blob and manifest, by digest
 *
 * The local store keeps one layout per repository, each tag an entry of index.json, so skopeo,
 * containerd and podman can read it as `oci:<dir>:<tag>`. Blobs are only ever written under a
 * temporary name and renamed once their digest is checked.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream } from "node:stream/web";
import { sha256, type Digest } from "../../../core/oci/digest.ts";
import { imageIndexSchema, type Descriptor, type ImageIndex } from "../../../core/oci/manifest.ts";
import { MediaType } from "../../../core/oci/media-types.ts";
import { HashingStream } from "../build/hashing.ts";
import { InputError } from "../spec/errors.ts";
import { linkOrCopy, tempPathFor, writeFileAtomic } from "./atomic.ts";

export const REF_NAME = "org.opencontainers.image.ref.name";
const LAYOUT_FILE = JSON.stringify({ imageLayoutVersion: "1.0.0" });

export class OciLayout {
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Opens a layout, creating an empty one if `dir` has none. */
  static async create(dir: string): Promise<OciLayout> {
    const layout = new OciLayout(dir);
    await mkdir(path.join(dir, "blobs", "sha256"), { recursive: true });
    if (!(await exists(path.join(dir, "oci-layout")))) await writeFileAtomic(path.join(dir, "oci-layout"), LAYOUT_FILE);
    if (!(await exists(path.join(dir, "index.json")))) {
      await writeFileAtomic(
        path.join(dir, "index.json"),
        JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }),
      );
    }
    return layout;
  }

  /** Opens an existing layout; a directory that is not one is the user's mistake. */
  static async open(dir: string): Promise<OciLayout> {
    if (!(await exists(path.join(dir, "oci-layout"))))
      throw new InputError(`${dir} is not an OCI image layout (no oci-layout file)`);
    return new OciLayout(dir);
  }

  blobPath(digest: Digest): string {
    return path.join(this.dir, "blobs", "sha256", digest.slice(7));
  }

  async blobSize(digest: Digest): Promise<number | undefined> {
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch {
      return undefined;
    }
  }

  async writeBytes(bytes: Uint8Array): Promise<{ digest: Digest; size: number }> {
    const digest = await sha256(bytes);
    if ((await this.blobSize(digest)) !== bytes.length) await writeFileAtomic(this.blobPath(digest), bytes);
    return { digest, size: bytes.length };
  }

  /** Streams a blob in, refusing it unless its bytes hash to `expected`. Skips a blob already present. */
  async writeStream(expected: Digest, body: ReadableStream<Uint8Array> | Readable): Promise<number> {
    const have = await this.blobSize(expected);
    if (have !== undefined) {
      if (body instanceof Readable) body.destroy();
      else await body.cancel();
      return have;
    }
    const file = this.blobPath(expected);
    const tmp = tempPathFor(file);
    const hash = new HashingStream();
    const source = body instanceof Readable ? body : Readable.fromWeb(body);
    try {
      await pipeline(source, hash, createWriteStream(tmp));
      const got = hash.digest();
      if (got !== expected) throw new Error(`blob ${expected} arrived with digest ${got}`);
      await rename(tmp, file);
      return hash.bytes;
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  /** Takes a content-addressed file from elsewhere (the build cache) by hard link or copy. */
  async adopt(file: string, digest: Digest): Promise<void> {
    await linkOrCopy(file, this.blobPath(digest));
  }

  async readBytes(digest: Digest): Promise<Uint8Array> {
    try {
      return new Uint8Array(await readFile(this.blobPath(digest)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new Error(`${this.dir} lacks blob ${digest}`);
      throw e;
    }
  }

  openBlob(digest: Digest, start = 0): Readable {
    return createReadStream(this.blobPath(digest), { start, highWaterMark: 1 << 20 });
  }

  async readIndex(): Promise<ImageIndex> {
    const text = await readFile(path.join(this.dir, "index.json"), "utf8");
    const parsed = imageIndexSchema.safeParse(JSON.parse(text));
    if (!parsed.success)
      throw new Error(`${this.dir}/index.json is not an OCI index: ${parsed.error.issues[0]?.message}`);
    return parsed.data;
  }

  /** Points `ref` at `descriptor`, replacing what it named before. */
  async tag(ref: string, descriptor: Descriptor): Promise<void> {
    const index = await this.readIndex();
    const manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME] !== ref);
    manifests.push({ ...descriptor, annotations: { ...descriptor.annotations, [REF_NAME]: ref } });
    await writeFileAtomic(path.join(this.dir, "index.json"), JSON.stringify({ ...index, manifests }));
  }

  /** Drops every index.json entry tagged `ref` (its blobs stay until a prune); false if there was none. */
  async untag(ref: string): Promise<boolean> {
    const index = await this.readIndex();
    const manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME] !== ref);
    if (manifests.length === index.manifests.length) return false;
    await writeFileAtomic(path.join(this.dir, "index.json"), JSON.stringify({ ...index, manifests }));
    return true;
  }

  /** The index.json entry for `ref`; with no ref, the only entry there is. */
  async resolve(ref: string | undefined): Promise<Descriptor> {
    const { manifests } = await this.readIndex();
    const found =
      ref === undefined
        ? manifests.length === 1
          ? manifests
          : []
        : manifests.filter((m) => m.annotations?.[REF_NAME] === ref);
    const names = manifests.map((m) => m.annotations?.[REF_NAME]).filter((n) => n !== undefined);
    if (found.length === 0) {
      const what = ref === undefined ? "no single image (name a tag)" : `no image tagged "${ref}"`;
      throw new InputError(`${this.dir} has ${what}; it has: ${names.join(", ") || "nothing"}`);
    }
    return found[found.length - 1]!;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
