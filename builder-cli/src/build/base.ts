/**
 * The BASE of a build: `scratch`, a local layout `oci:DIR[:tag]`, or an image in a registry.
 * Its configs and layers are copied into the target's layout (so the built image is complete
 * on disk and can be pushed anywhere), and its manifests are described with OCI media types:
 * the blobs are the same bytes, only the names differ, and one image should not mix the two
 * vocabularies.
 */
import type { Descriptor, Platform } from "../../../core/oci/manifest.ts";
import { MediaType } from "../../../core/oci/media-types.ts";
import { OciLayout } from "../store/layout.ts";
import { loadImage } from "../store/graph.ts";
import { formatPlatform } from "../store/platform.ts";
import { LayoutSource, type ImageSource } from "../store/source.ts";
import { InputError } from "../spec/errors.ts";
import { parseImageRef, type ImageRef } from "../registry/ref.ts";
import type { AuthOptions } from "../registry/auth.ts";

export interface BasePlatform {
  platform: Platform;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ResolvedBase {
  platforms: BasePlatform[];
  /** Set when the base lives in a registry: a push to the same registry can mount from it. */
  registryRef?: ImageRef;
}

const DOCKER_TO_OCI: Record<string, string> = {
  [MediaType.DockerConfig]: MediaType.OciConfig,
  [MediaType.DockerLayerGzip]: MediaType.OciLayerGzip,
  "application/vnd.docker.image.rootfs.diff.tar": MediaType.OciLayerTar,
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
};

export interface BaseOptions {
  platforms: Platform[];
  plainHttp?: boolean;
  /** Credentials for a registry BASE. */
  auth?: (registry: string) => Promise<AuthOptions | undefined>;
}

export async function resolveBase(base: string, into: OciLayout, opts: BaseOptions): Promise<ResolvedBase> {
  if (base === "scratch") return { platforms: await scratch(into, opts.platforms) };
  let source: ImageSource;
  let reference: string | undefined;
  let registryRef: ImageRef | undefined;
  if (base.startsWith("oci:")) {
    const { dir, ref } = splitLayoutRef(base.slice(4));
    const layout = await OciLayout.open(dir);
    source = new LayoutSource(layout);
    reference = (await layout.resolve(ref)).digest;
  } else {
    registryRef = parseImageRef(base, opts.plainHttp ? { plainHttp: true } : {});
    // Loaded only for a registry BASE: the HTTP client is not needed for the others.
    const { RegistrySource } = await import("../store/registry-source.ts");
    const remote = new RegistrySource(registryRef, await opts.auth?.(registryRef.registry));
    source = remote;
    reference = remote.reference;
  }
  const graph = await loadImage(source, reference, opts.platforms);
  const platforms: BasePlatform[] = [];
  for (const p of graph.platforms) {
    if (p.field)
      throw new InputError(
        `BASE ${base} (${formatPlatform(p.platform)}) is already a 2DFS image; build on its base instead`,
      );
    const blobs = [p.manifest.config, ...p.manifest.layers.filter((l) => !l.urls?.length)];
    for (const b of blobs) await into.writeStream(b.digest, await source.openBlob(b.digest));
    platforms.push({ platform: p.platform, config: toOci(p.manifest.config), layers: p.manifest.layers.map(toOci) });
  }
  return registryRef ? { platforms, registryRef } : { platforms };
}

/** `DIR[:tag]`; a colon inside the directory path is kept when the rest is not a plausible tag. */
export function splitLayoutRef(s: string): { dir: string; ref?: string } {
  const at = s.lastIndexOf(":");
  if (at > 0 && /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(s.slice(at + 1)))
    return { dir: s.slice(0, at), ref: s.slice(at + 1) };
  if (!s) throw new InputError("oci: needs a directory, as in oci:DIR[:tag]");
  return { dir: s };
}

function toOci(d: Descriptor): Descriptor {
  const mediaType = DOCKER_TO_OCI[d.mediaType] ?? d.mediaType;
  return { ...d, mediaType };
}

/** An empty image per platform: a config with no layers, default linux/amd64. */
async function scratch(into: OciLayout, platforms: Platform[]): Promise<BasePlatform[]> {
  const wanted = platforms.length ? platforms : [{ os: "linux", architecture: "amd64" }];
  const out: BasePlatform[] = [];
  for (const platform of wanted) {
    const config = {
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: {},
      rootfs: { type: "layers", diff_ids: [] },
      history: [],
    };
    const { digest, size } = await into.writeBytes(new TextEncoder().encode(JSON.stringify(config)));
    out.push({ platform, config: { mediaType: MediaType.OciConfig, digest, size }, layers: [] });
  }
  return out;
}
