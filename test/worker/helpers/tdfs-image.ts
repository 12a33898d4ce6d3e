/**
 * Hand-assembled 2DFS images for the workerd tests: a base image per platform, a field of
 * allotments on top, pushed through the Worker's real routes.
 */
import { exports } from "cloudflare:workers";
import { MediaType } from "../../../core/oci/media-types.ts";
import { serializeField, type Allotment } from "../../../core/tdfs/field.ts";

export const REGISTRY = "http://registry.test";

export interface Blob {
  digest: string;
  hex: string;
  size: number;
  bytes: Uint8Array;
}

export async function blobOf(bytes: Uint8Array): Promise<Blob> {
  const hex = await sha256Hex(bytes);
  return { digest: `sha256:${hex}`, hex, size: bytes.byteLength, bytes };
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const hash = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(hash)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

export async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Response(bytes).body!.pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export async function fetchRegistry(path: string, init?: RequestInit): Promise<Response> {
  return exports.default.fetch(`${REGISTRY}${path}`, init);
}

export async function pushBlob(repo: string, bytes: Uint8Array): Promise<Blob> {
  const b = await blobOf(bytes);
  const r = await fetchRegistry(`/v2/${repo}/blobs/uploads/?digest=${b.digest}`, { method: "POST", body: bytes });
  if (r.status !== 201) throw new Error(`blob push failed: ${r.status} ${await r.text()}`);
  return b;
}

export async function pushManifest(repo: string, ref: string, json: unknown, mediaType: string): Promise<Response> {
  return fetchRegistry(`/v2/${repo}/manifests/${ref}`, {
    method: "PUT",
    headers: { "Content-Type": mediaType },
    body: JSON.stringify(json),
  });
}

/** The kinds of bytes an allotment can have: the registry must serve each with its own media type. */
export type AllotmentKind = "gzip" | "tar" | "zstd";

export interface Cell {
  row: number;
  col: number;
  kind: AllotmentKind;
}

export interface PushedAllotment extends Allotment {
  blob: Blob;
  mediaType: string;
}

export interface PushedPlatform {
  platform: { os: string; architecture: string };
  baseLayers: Blob[];
  diffIds: string[];
  config: Blob;
  configJson: Record<string, unknown>;
  manifest: Blob;
  manifestJson: Record<string, unknown>;
}

export interface PushedImage {
  repo: string;
  tag: string;
  allotments: PushedAllotment[];
  field: Blob;
  platforms: PushedPlatform[];
  index?: Blob;
  indexJson?: Record<string, unknown>;
  root: Blob;
}

const MEDIA: Record<AllotmentKind, string> = {
  gzip: MediaType.OciLayerGzip,
  tar: MediaType.OciLayerTar,
  zstd: MediaType.OciLayerZstd,
};

/** A fake tar payload; the registry never unpacks layers, it only serves their bytes. */
async function allotmentBytes(kind: AllotmentKind, seed: string): Promise<{ blob: Uint8Array; diff: Uint8Array }> {
  const diff = new Uint8Array([...new TextEncoder().encode(`allotment ${seed}\n`), ...randomBytes(2048)]);
  if (kind === "gzip") return { blob: await gzip(diff), diff };
  if (kind === "zstd") {
    // A zstd frame magic followed by payload: enough for the registry's sniffing.
    return { blob: new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, ...diff]), diff };
  }
  return { blob: diff, diff };
}

export interface ImageSpec {
  repo: string;
  tag: string;
  cells: Cell[];
  platforms?: { os: string; architecture: string }[];
  /** Index annotations (named partitions go here). */
  annotations?: Record<string, string>;
  /** Push a single manifest instead of an index (the first platform only). */
  single?: boolean;
}

/** Pushes blobs, field, configs, manifests and (unless single) an index; returns every digest. */
export async function pushTdfsImage(spec: ImageSpec): Promise<PushedImage> {
  const { repo, tag } = spec;
  const allotments: PushedAllotment[] = [];
  for (const c of spec.cells) {
    const { blob, diff } = await allotmentBytes(c.kind, `${repo}:${c.row},${c.col}`);
    const b = await pushBlob(repo, blob);
    allotments.push({
      row: c.row,
      col: c.col,
      digest: b.hex,
      diffid: await sha256Hex(diff),
      blob: b,
      mediaType: MEDIA[c.kind],
    });
  }
  const fieldText = serializeField({
    allotments: [...allotments]
      .sort((a, b) => a.row - b.row || a.col - b.col)
      .map(({ row, col, digest, diffid }) => ({ row, col, digest, diffid })),
    owner: "",
  });
  const field = await pushBlob(repo, new TextEncoder().encode(fieldText));
  const platforms: PushedPlatform[] = [];
  for (const platform of spec.platforms ?? [{ os: "linux", architecture: "amd64" }]) {
    const baseLayers: Blob[] = [];
    const diffIds: string[] = [];
    for (let i = 0; i < 2; i++) {
      const diff = randomBytes(4096);
      diffIds.push(`sha256:${await sha256Hex(diff)}`);
      baseLayers.push(await pushBlob(repo, await gzip(diff)));
    }
    const configJson = {
      architecture: platform.architecture,
      os: platform.os,
      config: { Env: ["PATH=/usr/bin"], Cmd: ["/bin/sh"] },
      rootfs: { type: "layers", diff_ids: diffIds },
      history: [{ created_by: "base layer 0" }, { created_by: "base layer 1" }],
      "x-unknown-field": { kept: [1, 2.5, "three"] },
    };
    const config = await pushBlob(repo, new TextEncoder().encode(JSON.stringify(configJson)));
    const manifestJson = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: config.digest, size: config.size },
      layers: [
        ...baseLayers.map((l) => ({ mediaType: MediaType.OciLayerGzip, digest: l.digest, size: l.size })),
        { mediaType: MediaType.TdfsField, digest: field.digest, size: field.size },
      ],
      annotations: { "org.example.platform-note": `${platform.os}/${platform.architecture}` },
    };
    const bytes = new TextEncoder().encode(JSON.stringify(manifestJson));
    const manifest = await blobOf(bytes);
    const ref = spec.single ? tag : manifest.digest;
    const r = await pushManifest(repo, ref, manifestJson, MediaType.OciManifest);
    if (r.status !== 201) throw new Error(`manifest push failed: ${r.status} ${await r.text()}`);
    platforms.push({ platform, baseLayers, diffIds, config, configJson, manifest, manifestJson });
    if (spec.single) return { repo, tag, allotments, field, platforms, root: manifest };
  }
  const indexJson = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: platforms.map((p) => ({
      mediaType: MediaType.OciManifest,
      digest: p.manifest.digest,
      size: p.manifest.size,
      platform: p.platform,
      annotations: { "org.example.entry": p.platform.architecture },
    })),
    annotations: { "2dfs.image.name": `${repo}:${tag}`, ...spec.annotations },
  };
  const index = await blobOf(new TextEncoder().encode(JSON.stringify(indexJson)));
  const r = await pushManifest(repo, tag, indexJson, MediaType.OciIndex);
  if (r.status !== 201) throw new Error(`index push failed: ${r.status} ${await r.text()}`);
  return { repo, tag, allotments, field, platforms, index, indexJson, root: index };
}
