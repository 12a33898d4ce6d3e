/**
 * A typed builder for test images, so that a test reads as a sentence:
 *
 *   const img = await anImage().withRandomLayers(2).pushTo(repo, "v1");
 *   const idx = await anIndex().of(amd64, arm64).pushTo(repo, "multi");
 *   const sbom = await anImage().withArtifactType(SBOM).withSubject(img.descriptor).pushTo(repo);
 *
 * Manifests are serialized with unusual indentation, so a registry that re-encoded them instead of
 * serving the pushed bytes would be caught.
 */
import type { Digest } from "../../../core/oci/digest.ts";
import type { Descriptor, Platform } from "../../../core/oci/manifest.ts";
import { MediaType } from "../../../core/oci/media-types.ts";
import { digestOf, randomBytes, utf8 } from "./bytes.ts";
import { registry } from "./registry.ts";

export interface BlobContent {
  descriptor: Descriptor;
  bytes: Uint8Array;
}

export interface BuiltManifest {
  mediaType: string;
  /** The exact bytes pushed. */
  bytes: Uint8Array;
  digest: Digest;
  /** How a referrer or the referrers API names this manifest. */
  descriptor: Descriptor;
  /** The platform an index lists it under (image manifests only). */
  platform?: Platform;
  /** Blobs the manifest references (config and layers); empty for an index. */
  blobs: BlobContent[];
  /** Child manifests (for an index). */
  children: BuiltManifest[];
}

type Flavour = "oci" | "docker";

const INDENT = 3;

async function blob(bytes: Uint8Array, mediaType: string): Promise<BlobContent> {
  return { descriptor: { mediaType, digest: await digestOf(bytes), size: bytes.byteLength }, bytes };
}

async function finish(
  json: Record<string, unknown>,
  mediaType: string,
  blobs: BlobContent[],
  children: BuiltManifest[],
  platform: Platform | undefined,
  artifactType: string | undefined,
): Promise<BuiltManifest> {
  const bytes = utf8(JSON.stringify(json, null, INDENT));
  const digest = await digestOf(bytes);
  const descriptor: Descriptor = { mediaType, digest, size: bytes.byteLength };
  if (artifactType) descriptor.artifactType = artifactType;
  return { mediaType, bytes, digest, descriptor, blobs, children, ...(platform ? { platform } : {}) };
}

/** Pushes every blob and child, then the manifest itself (by `reference`, or by its digest). */
async function push(repo: string, m: BuiltManifest, reference?: string): Promise<BuiltManifest> {
  for (const child of m.children) await push(repo, child);
  for (const b of m.blobs) await registry.pushBlob(repo, b.bytes);
  await registry.pushManifest(repo, reference ?? m.digest, m.bytes, m.mediaType);
  return m;
}

export function anImage(): ImageBuilder {
  return new ImageBuilder();
}

export class ImageBuilder {
  #flavour: Flavour = "oci";
  #layers: Uint8Array[] = [];
  #platform: Platform = { os: "linux", architecture: "amd64" };
  #artifactType: string | undefined;
  #configMediaType: string | undefined;
  #subject: Descriptor | undefined;
  #annotations: Record<string, string> | undefined;

  /** `count` layers of `size` random bytes each. */
  withRandomLayers(count: number, size = 1024): this {
    for (let i = 0; i < count; i++) this.#layers.push(randomBytes(size));
    return this;
  }

  /** Docker schema 2 media types instead of OCI ones. */
  asDocker(): this {
    this.#flavour = "docker";
    return this;
  }

  forPlatform(os: string, architecture: string): this {
    this.#platform = { os, architecture };
    return this;
  }

  withArtifactType(artifactType: string): this {
    this.#artifactType = artifactType;
    return this;
  }

  /** An artifact whose type is told only by its config's media type, as older referrers do. */
  withConfigMediaType(mediaType: string): this {
    this.#configMediaType = mediaType;
    return this;
  }

  withSubject(subject: Descriptor): this {
    this.#subject = subject;
    return this;
  }

  withAnnotations(annotations: Record<string, string>): this {
    this.#annotations = annotations;
    return this;
  }

  async build(): Promise<BuiltManifest> {
    const docker = this.#flavour === "docker";
    const mediaType = docker ? MediaType.DockerManifest : MediaType.OciManifest;
    const layerType = docker ? MediaType.DockerLayerGzip : MediaType.OciLayerGzip;
    const configType = this.#configMediaType ?? (docker ? MediaType.DockerConfig : MediaType.OciConfig);
    const configJson = {
      architecture: this.#platform.architecture,
      os: this.#platform.os,
      rootfs: { type: "layers", diff_ids: [] as string[] },
      // Distinct configs, so two images built alike still differ.
      config: { Labels: { nonce: crypto.randomUUID() } },
    };
    const config = await blob(utf8(JSON.stringify(configJson)), configType);
    const layers = await Promise.all(this.#layers.map((l) => blob(l, layerType)));
    const json: Record<string, unknown> = {
      schemaVersion: 2,
      mediaType,
      ...(this.#artifactType ? { artifactType: this.#artifactType } : {}),
      config: config.descriptor,
      layers: layers.map((l) => l.descriptor),
      ...(this.#subject ? { subject: this.#subject } : {}),
      ...(this.#annotations ? { annotations: this.#annotations } : {}),
    };
    return finish(json, mediaType, [config, ...layers], [], this.#platform, this.#artifactType);
  }

  async pushTo(repo: string, reference?: string): Promise<BuiltManifest> {
    return push(repo, await this.build(), reference);
  }
}

export function anIndex(): IndexBuilder {
  return new IndexBuilder();
}

export class IndexBuilder {
  #flavour: Flavour = "oci";
  #children: BuiltManifest[] = [];
  #artifactType: string | undefined;
  #subject: Descriptor | undefined;
  #annotations: Record<string, string> | undefined;

  /** The platform manifests the index lists (built with `anImage().forPlatform(...)`). */
  of(...children: BuiltManifest[]): this {
    this.#children.push(...children);
    return this;
  }

  asDocker(): this {
    this.#flavour = "docker";
    return this;
  }

  withArtifactType(artifactType: string): this {
    this.#artifactType = artifactType;
    return this;
  }

  withSubject(subject: Descriptor): this {
    this.#subject = subject;
    return this;
  }

  withAnnotations(annotations: Record<string, string>): this {
    this.#annotations = annotations;
    return this;
  }

  async build(): Promise<BuiltManifest> {
    const mediaType = this.#flavour === "docker" ? MediaType.DockerManifestList : MediaType.OciIndex;
    const json: Record<string, unknown> = {
      schemaVersion: 2,
      mediaType,
      ...(this.#artifactType ? { artifactType: this.#artifactType } : {}),
      manifests: this.#children.map((c) => (c.platform ? { ...c.descriptor, platform: c.platform } : c.descriptor)),
      ...(this.#subject ? { subject: this.#subject } : {}),
      ...(this.#annotations ? { annotations: this.#annotations } : {}),
    };
    return finish(json, mediaType, [], this.#children, undefined, this.#artifactType);
  }

  async pushTo(repo: string, reference?: string): Promise<BuiltManifest> {
    return push(repo, await this.build(), reference);
  }
}
