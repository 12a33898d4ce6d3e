/**
 * Reads an image's manifests, configs and fields from a source: everything small that describes
 * it, none of the layer bytes. A single manifest is treated as an index of one, its platform
 * taken from its config, so callers handle one shape.
 */
import {
  imageIndexSchema,
  imageManifestSchema,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  type Platform,
} from "../../../core/oci/manifest.ts";
import { isIndexMediaType } from "../../../core/oci/media-types.ts";
import { parseField, type Field } from "../../../core/tdfs/field.ts";
import { findFieldLayer } from "../../../core/tdfs/partition.ts";
import { InputError } from "../spec/errors.ts";
import { formatPlatform, platformMatches } from "./platform.ts";
import type { FetchedManifest, ImageSource } from "./source.ts";

export interface PlatformImage {
  /** The index entry (for a single-manifest image, one made up from the manifest). */
  descriptor: Descriptor;
  platform: Platform;
  manifestBytes: Uint8Array;
  manifest: ImageManifest;
  configBytes: Uint8Array;
  field?: { descriptor: Descriptor; bytes: Uint8Array; field: Field };
}

export interface ImageGraph {
  root: FetchedManifest;
  /** Present when the root is an index. */
  index?: ImageIndex;
  platforms: PlatformImage[];
}

/**
 * Loads the image `reference` names. With `wanted` platforms, only those; otherwise every
 * platform, and with `keepAll` also index entries that are not platforms (attestations), for a
 * copy that must stay byte-identical.
 */
export async function loadImage(
  source: ImageSource,
  reference: string,
  wanted: Platform[] = [],
  opts: { keepAll?: boolean } = {},
): Promise<ImageGraph> {
  const root = await source.manifest(reference);
  if (!isIndexMediaType(root.mediaType)) {
    const one = await loadPlatform(source, root, undefined);
    if (wanted.length && !wanted.some((w) => platformMatches(one.platform, w))) {
      throw new InputError(
        `${source.name}: the image is ${formatPlatform(one.platform)} only, not ${wanted.map(formatPlatform).join(", ")}`,
      );
    }
    return { root, platforms: [one] };
  }
  const index = parseJson(imageIndexSchema, root.bytes, `${source.name}: index ${root.digest}`);
  const entries = index.manifests.filter((m) => {
    if (isIndexMediaType(m.mediaType)) throw new InputError(`${source.name}: nested indexes are not supported`);
    if (opts.keepAll) return true;
    // Attestations (buildkit's "unknown/unknown" entries) are not platforms.
    if (!m.platform || m.platform.os === "unknown") return false;
    return wanted.length === 0 || wanted.some((w) => platformMatches(m.platform!, w));
  });
  if (entries.length === 0) {
    const have = index.manifests.flatMap((m) => (m.platform ? [formatPlatform(m.platform)] : []));
    throw new InputError(
      `${source.name}: no platform matches ${wanted.map(formatPlatform).join(", ") || "(any)"}; it has ${have.join(", ") || "none"}`,
    );
  }
  const platforms = await Promise.all(
    entries.map(async (d) => loadPlatform(source, await source.manifest(d.digest), d)),
  );
  return { root, index, platforms };
}

async function loadPlatform(
  source: ImageSource,
  fetched: FetchedManifest,
  entry: Descriptor | undefined,
): Promise<PlatformImage> {
  const manifest = parseJson(imageManifestSchema, fetched.bytes, `${source.name}: manifest ${fetched.digest}`);
  const configBytes = await source.blobBytes(manifest.config.digest);
  const config = JSON.parse(new TextDecoder().decode(configBytes)) as Partial<Platform>;
  const platform: Platform = entry?.platform ?? {
    os: config.os ?? "linux",
    architecture: config.architecture ?? "amd64",
    ...(config.variant ? { variant: config.variant } : {}),
  };
  const descriptor: Descriptor = entry ?? {
    mediaType: fetched.mediaType,
    digest: fetched.digest,
    size: fetched.bytes.length,
    platform,
  };
  const fieldLayer = findFieldLayer(manifest);
  let field: PlatformImage["field"];
  if (fieldLayer) {
    const bytes = await source.blobBytes(fieldLayer.digest);
    field = { descriptor: fieldLayer, bytes, field: parseField(bytes) };
  }
  return { descriptor, platform, manifestBytes: fetched.bytes, manifest, configBytes, ...(field ? { field } : {}) };
}

function parseJson<T>(
  schema: {
    safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { message: string }[] } };
  },
  bytes: Uint8Array,
  what: string,
): T {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new Error(`${what} is not JSON`);
  }
  const r = schema.safeParse(json);
  if (!r.success) throw new Error(`${what} is invalid: ${r.error.issues[0]?.message}`);
  return r.data;
}
