/**
 * Manifest and index schemas (zod/mini, core/zod.ts). They validate what the registry needs to trust: the
 * descriptors it will follow. Unknown fields pass through untouched, because the registry always
 * serves the exact bytes that were pushed and never re-encodes a manifest.
 */
import * as z from "../zod.ts";
import { isDigest, type Digest } from "./digest.ts";
import { RegistryError } from "./errors.ts";
import { JsonTextError, parseJsonDocument } from "./json.ts";
import { isIndexMediaType, isManifestMediaType, MediaType, type ManifestMediaType } from "./media-types.ts";

const digestSchema = z.pipe(
  z.string().check(z.refine(isDigest, { message: "must be a sha256 or sha512 digest" })),
  z.transform((s) => s as Digest),
);

export const platformSchema = z.looseObject({
  architecture: z.string(),
  os: z.string(),
  "os.version": z.optional(z.string()),
  "os.features": z.optional(z.array(z.string())),
  variant: z.optional(z.string()),
});
export type Platform = z.infer<typeof platformSchema>;

export const descriptorSchema = z.looseObject({
  mediaType: z.string().check(z.minLength(1)),
  digest: digestSchema,
  size: z.int().check(z.nonnegative()),
  urls: z.optional(z.array(z.string())),
  annotations: z.optional(z.record(z.string(), z.string())),
  artifactType: z.optional(z.string()),
  platform: z.optional(platformSchema),
});
export type Descriptor = z.infer<typeof descriptorSchema>;

export const imageManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.optional(z.string()),
  artifactType: z.optional(z.string()),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: z.optional(descriptorSchema),
  annotations: z.optional(z.record(z.string(), z.string())),
});
export type ImageManifest = z.infer<typeof imageManifestSchema>;

export const imageIndexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.optional(z.string()),
  artifactType: z.optional(z.string()),
  manifests: z.array(descriptorSchema),
  subject: z.optional(descriptorSchema),
  annotations: z.optional(z.record(z.string(), z.string())),
});
export type ImageIndex = z.infer<typeof imageIndexSchema>;

export type ParsedManifest =
  | { kind: "manifest"; mediaType: ManifestMediaType; manifest: ImageManifest }
  | { kind: "index"; mediaType: ManifestMediaType; manifest: ImageIndex };

/**
 * Parses manifest bytes. The media type comes from the body's `mediaType` if present, otherwise
 * from the request's Content-Type; when both are present they must agree. Bytes a client pushes
 * are read as strictly as Go clients will read them (core/oci/json.ts); stored bytes were accepted
 * at push, perhaps under older rules, and are read as they were then, so that the collector and
 * readers still follow them.
 */
export function parseManifest(
  bytes: Uint8Array,
  contentType: string | null,
  { pushed = false }: { pushed?: boolean } = {},
): ParsedManifest {
  let json: unknown;
  try {
    json = parseJsonDocument(bytes, { strict: pushed });
  } catch (e) {
    if (!(e instanceof JsonTextError)) throw e;
    throw new RegistryError("MANIFEST_INVALID", `manifest ${e.message}`, { reason: e.message });
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new RegistryError("MANIFEST_INVALID", "manifest must be a JSON object");
  }
  const declared = (json as { mediaType?: unknown }).mediaType;
  // A generic `application/json` (scripts send it) says only that the body is JSON: it neither
  // contradicts the body's mediaType nor names one, so the body or its shape decides.
  const sent = contentType?.split(";")[0]?.trim() || undefined;
  const header = sent === "application/json" ? undefined : sent;
  if (declared !== undefined && typeof declared !== "string") {
    throw new RegistryError("MANIFEST_INVALID", "mediaType must be a string");
  }
  if (declared && header && declared !== header) {
    throw new RegistryError("MANIFEST_INVALID", "mediaType in the body does not match Content-Type", {
      body: declared,
      contentType: header,
    });
  }
  const mediaType = declared ?? header ?? guessMediaType(json);
  if (!mediaType || !isManifestMediaType(mediaType)) {
    throw new RegistryError("MANIFEST_INVALID", "unsupported manifest media type", {
      mediaType: mediaType ?? null,
      supported: [MediaType.OciManifest, MediaType.OciIndex, MediaType.DockerManifest, MediaType.DockerManifestList],
    });
  }
  const schema = isIndexMediaType(mediaType) ? imageIndexSchema : imageManifestSchema;
  const result = schema.safeParse(json);
  if (!result.success) {
    throw new RegistryError("MANIFEST_INVALID", "manifest does not match its schema", {
      mediaType,
      issues: result.error.issues.slice(0, 10).map((i) => ({ path: i.path.join("."), message: i.message })),
    });
  }
  return isIndexMediaType(mediaType)
    ? { kind: "index", mediaType, manifest: result.data as ImageIndex }
    : { kind: "manifest", mediaType, manifest: result.data as ImageManifest };
}

/** OCI manifests may omit mediaType; the shape then tells which it is. */
function guessMediaType(json: object): string | undefined {
  if ("manifests" in json) return MediaType.OciIndex;
  if ("config" in json && "layers" in json) return MediaType.OciManifest;
  return undefined;
}
