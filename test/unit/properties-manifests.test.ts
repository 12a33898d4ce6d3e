/**
 * Properties of manifest and index validation (core/oci/manifest.ts, json.ts): valid generated
 * manifests and indexes are accepted as what they are, and no bytes, however wrong (random JSON,
 * mutated manifests, huge numbers, deep nesting, duplicate keys, wrong media types), make the
 * parser throw anything but RegistryError.
 */
import fc from "fast-check";
import { describe, expect } from "vitest";
import { isDigest } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import { JSON_MAX_DEPTH } from "../../core/oci/json.ts";
import { parseManifest, type Descriptor, type ParsedManifest } from "../../core/oci/manifest.ts";
import { isIndexMediaType, MANIFEST_MEDIA_TYPES, MediaType } from "../../core/oci/media-types.ts";
import { hexOf } from "./properties-arbitraries.ts";
import { anyText, expectOnly, propertySuite, thrown } from "./properties-support.ts";

const { property } = propertySuite("properties-manifests");

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

const digest = fc.oneof(
  hexOf(32).map((h) => `sha256:${h}`),
  hexOf(64).map((h) => `sha512:${h}`),
);
const stringMap = fc.dictionary(anyText(12), anyText(12), { maxKeys: 3 });
/** Fields no schema knows, which must pass through: any JSON, under names the schemas do not use. */
const unknownFields = fc.dictionary(
  fc.string({ minLength: 1, maxLength: 8 }).map((k) => `x-${k}`),
  fc.jsonValue({ maxDepth: 2 }),
  { maxKeys: 2 },
);

const descriptor = fc
  .record(
    {
      mediaType: fc.oneof(
        fc.constantFrom(MediaType.OciLayerGzip, MediaType.OciConfig, MediaType.TdfsField, MediaType.OciManifest),
        anyText(20).filter((s) => s.length > 0),
      ),
      digest,
      size: fc.oneof(fc.nat({ max: 1e9 }), fc.constant(0), fc.constant(Number.MAX_SAFE_INTEGER)),
      urls: fc.array(anyText(20), { maxLength: 2 }),
      annotations: stringMap,
      artifactType: anyText(20),
      platform: fc.record(
        {
          architecture: fc.constantFrom("amd64", "arm64", ""),
          os: fc.constantFrom("linux", "windows"),
          "os.version": anyText(8),
          "os.features": fc.array(anyText(8), { maxLength: 2 }),
          variant: fc.constantFrom("v7", "v8"),
        },
        { requiredKeys: ["architecture", "os"] },
      ),
    },
    { requiredKeys: ["mediaType", "digest", "size"] },
  )
  .chain((d) => unknownFields.map((x) => ({ ...x, ...d })));

/** The optional parts every manifest and index may carry. */
const common = {
  artifactType: anyText(20),
  subject: descriptor,
  annotations: stringMap,
};

const imageManifest = fc.record(
  {
    schemaVersion: fc.constant(2),
    mediaType: fc.constantFrom(MediaType.OciManifest, MediaType.DockerManifest),
    config: descriptor,
    layers: fc.array(descriptor, { maxLength: 4 }),
    ...common,
  },
  { requiredKeys: ["schemaVersion", "config", "layers"] },
);

const imageIndex = fc.record(
  {
    schemaVersion: fc.constant(2),
    mediaType: fc.constantFrom(MediaType.OciIndex, MediaType.DockerManifestList),
    manifests: fc.array(descriptor, { maxLength: 4 }),
    ...common,
  },
  { requiredKeys: ["schemaVersion", "manifests"] },
);

const valid = fc
  .tuple(fc.oneof(imageManifest, imageIndex), unknownFields, fc.constantFrom(0, 2, "\t"))
  .map(([m, extra, indent]) => ({ json: { ...extra, ...m } as Record<string, unknown>, indent }));

/** A Content-Type for `mediaType`: absent, the same, generic JSON, or with parameters. */
const contentTypeFor = (mediaType: string | undefined): fc.Arbitrary<string | null> =>
  fc.constantFrom(
    null,
    mediaType ?? null,
    "application/json",
    mediaType ? `${mediaType}; charset=utf-8` : null,
    mediaType ? ` ${mediaType} ` : null,
  );

/** What the property demands of any parse: RegistryError or a manifest whose descriptors can be followed. */
function parseOrError(bytes: Uint8Array, contentType: string | null, pushed: boolean): ParsedManifest | RegistryError {
  const e = thrown(() => parseManifest(bytes, contentType, { pushed }));
  expectOnly(e, RegistryError);
  if (e instanceof RegistryError) {
    expect([e.code, e.status]).toEqual(["MANIFEST_INVALID", 400]);
    // The detail is rendered into the response: it must stay small, whatever was sent.
    expect(JSON.stringify(e.toJSON()).length).toBeLessThan(20_000);
    return e;
  }
  const parsed = parseManifest(bytes, contentType, { pushed });
  expect(MANIFEST_MEDIA_TYPES).toContain(parsed.mediaType);
  expect(parsed.kind === "index").toBe(isIndexMediaType(parsed.mediaType));
  const followed: Descriptor[] =
    parsed.kind === "index" ? parsed.manifest.manifests : [parsed.manifest.config, ...parsed.manifest.layers];
  for (const d of followed) {
    expect(isDigest(d.digest)).toBe(true);
    expect(Number.isSafeInteger(d.size) && d.size >= 0).toBe(true);
  }
  return parsed;
}

describe("manifests: valid ones", () => {
  property(
    "a generated manifest or index is accepted as what it is, with the descriptors it lists",
    fc.property(
      valid.chain(({ json, indent }) =>
        fc.tuple(fc.constant({ json, indent }), contentTypeFor(json.mediaType as string), fc.boolean(), fc.boolean()),
      ),
      ([{ json, indent }, contentType, pushed, dropMediaType]) => {
        const body = dropMediaType ? { ...json, mediaType: undefined } : json;
        // OCI manifests may leave mediaType out; then the Content-Type or the shape names it.
        const parsed = parseOrError(enc(JSON.stringify(body, null, indent)), contentType, pushed);
        if (parsed instanceof RegistryError)
          throw new Error(`refused: ${parsed.message} ${JSON.stringify(parsed.detail)}`);
        expect(parsed.kind).toBe("manifests" in json ? "index" : "manifest");
        const listed = "manifests" in json ? json.manifests : [json.config, ...(json.layers as unknown[])];
        const got =
          parsed.kind === "index" ? parsed.manifest.manifests : [parsed.manifest.config, ...parsed.manifest.layers];
        expect(got.map((d) => d.digest)).toEqual((listed as Descriptor[]).map((d) => d.digest));
      },
    ),
    3_000,
  );
});

/** Every path to a value inside `json`, objects and arrays included. */
function paths(json: unknown, at: (string | number)[] = []): (string | number)[][] {
  const here = [at];
  if (Array.isArray(json)) return [...here, ...json.flatMap((v, i) => paths(v, [...at, i]))];
  if (json && typeof json === "object") {
    return [...here, ...Object.entries(json).flatMap(([k, v]) => paths(v, [...at, k]))];
  }
  return here;
}

/** `json` with the value at `path` replaced (or, at the root, `json` itself replaced). */
function replaced(json: unknown, path: readonly (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  const copy = (Array.isArray(json) ? [...json] : { ...(json as object) }) as Record<string | number, unknown>;
  copy[head] = replaced(copy[head], rest, value);
  return copy;
}

/** Values of the wrong type, or right type and wrong value: what a careless or hostile pusher sends. */
const wrongValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(-1, 1.5, 2 ** 53, 1e308, "", "sha256:", `sha256:${"A".repeat(64)}`, null, [], {}, 3, "2"),
);

/** Raw text that JSON.stringify cannot make: numbers beyond any double, repeated keys, deep nesting. */
const rawText = fc.oneof(
  valid.map(({ json }) => JSON.stringify(json).replace(/"size":\d+/, '"size":1e400')),
  valid.map(({ json }) => JSON.stringify(json).replace(/"size":\d+/, '"size":123456789012345678901234567890')),
  fc
    .tuple(valid, fc.constantFrom("mediaType", "schemaVersion", "layers", "manifests", "config"), wrongValue)
    .map(([{ json }, key, value]) => `{"${key}":${JSON.stringify(value)},${JSON.stringify(json).slice(1)}`),
  fc
    .tuple(valid, fc.constantFrom("mediaType", "schemaVersion", "layers", "manifests", "config"), wrongValue)
    .map(([{ json }, key, value]) => `${JSON.stringify(json).slice(0, -1)},"${key}":${JSON.stringify(value)}}`),
  fc
    .tuple(valid, fc.oneof(fc.nat({ max: 50 }), fc.integer({ min: JSON_MAX_DEPTH - 2, max: JSON_MAX_DEPTH + 2 })))
    .map(([{ json }, depth]) => `${JSON.stringify(json).slice(0, -1)},"x":${"[".repeat(depth)}${"]".repeat(depth)}}`),
);

describe("manifests: arbitrary input", () => {
  const mediaTypes = fc.oneof(
    fc.constantFrom(null, "application/json", ...MANIFEST_MEDIA_TYPES, MediaType.OciConfig, "text/plain; x=y", ";"),
    anyText(30),
  );

  property(
    "random JSON, text and bytes throw nothing but MANIFEST_INVALID",
    fc.property(
      fc.oneof(
        fc.json({ maxDepth: 4 }).map(enc),
        fc.jsonValue({ maxDepth: 3 }).map((v) => enc(JSON.stringify({ schemaVersion: 2, ...(v as object) }))),
        anyText(80).map(enc),
        fc.uint8Array({ maxLength: 80 }),
      ),
      mediaTypes,
      fc.boolean(),
      (bytes, contentType, pushed) => {
        parseOrError(bytes, contentType, pushed);
      },
    ),
    5_000,
  );

  property(
    "a valid manifest with one value anywhere replaced throws nothing but MANIFEST_INVALID",
    fc.property(
      valid.chain(({ json }) => fc.tuple(fc.constant(json), fc.constantFrom(...paths(json)), wrongValue)),
      mediaTypes,
      fc.boolean(),
      ([json, path, value], contentType, pushed) => {
        const text = JSON.stringify(replaced(json, path, value));
        if (text !== undefined) parseOrError(enc(text), contentType, pushed);
      },
    ),
    5_000,
  );

  property(
    "huge numbers, repeated keys and deep nesting throw nothing but MANIFEST_INVALID; pushed, nesting is bounded",
    fc.property(rawText, mediaTypes, fc.boolean(), (text, contentType, pushed) => {
      const parsed = parseOrError(enc(text), contentType, pushed);
      // A repeated key means what its last value says, as for Go's encoding/json and JSON.parse.
      if (!(parsed instanceof RegistryError)) expect(parsed.manifest.schemaVersion).toBe(2);
      if (pushed && /"x":\[{10001}/.test(text)) expect(parsed).toBeInstanceOf(RegistryError);
    }),
    1_000,
  );
});
