/** Every media type the registry and the builder speak, in one place. */
export const MediaType = {
  OciManifest: "application/vnd.oci.image.manifest.v1+json",
  OciIndex: "application/vnd.oci.image.index.v1+json",
  OciConfig: "application/vnd.oci.image.config.v1+json",
  OciLayerTar: "application/vnd.oci.image.layer.v1.tar",
  OciLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  OciLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  OciEmpty: "application/vnd.oci.empty.v1+json",
  DockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  DockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  DockerConfig: "application/vnd.docker.container.image.v1+json",
  DockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  /** The 2DFS field layer: last in `layers`, with no diff_id in the config. */
  TdfsField: "application/vnd.oci.image.layer.v1.2dfs.field",
} as const;

export type ManifestMediaType =
  | typeof MediaType.OciManifest
  | typeof MediaType.OciIndex
  | typeof MediaType.DockerManifest
  | typeof MediaType.DockerManifestList;

export const MANIFEST_MEDIA_TYPES: readonly ManifestMediaType[] = [
  MediaType.OciManifest,
  MediaType.OciIndex,
  MediaType.DockerManifest,
  MediaType.DockerManifestList,
];

export function isManifestMediaType(t: string): t is ManifestMediaType {
  return (MANIFEST_MEDIA_TYPES as readonly string[]).includes(t);
}

export function isIndexMediaType(t: string): boolean {
  return t === MediaType.OciIndex || t === MediaType.DockerManifestList;
}

/** Layer compression as told by the leading bytes of a blob: gzip, zstd, or none (a plain tar). */
export type Compression = "gzip" | "zstd" | "none";

export function sniffCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  return "none";
}

export function layerMediaTypeFor(c: Compression): string {
  return c === "gzip" ? MediaType.OciLayerGzip : c === "zstd" ? MediaType.OciLayerZstd : MediaType.OciLayerTar;
}
