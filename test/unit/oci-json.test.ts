import { describe, expect, it } from "vitest";
import { JSON_MAX_DEPTH, JsonTextError, nestingDepth, parseJsonDocument } from "../../core/oci/json.ts";
import { parseManifest } from "../../core/oci/manifest.ts";
import { MediaType } from "../../core/oci/media-types.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const nested = (depth: number): string => `${"[".repeat(depth)}${"]".repeat(depth)}`;

describe("nestingDepth", () => {
  it.each([
    ["a scalar", "1", 0],
    ["an empty object", "{}", 1],
    ["objects in arrays", '[{"a":[1,{"b":{}}]},[]]', 5],
    ["brackets inside strings", '{"a":"[[{{","b":["]}"]}', 2],
    ["escaped quotes and backslashes", '{"a":"\\"[[","b":"\\\\","c":[[]]}', 3],
  ])("counts %s", (_what, text, depth) => {
    expect(nestingDepth(text)).toBe(depth);
  });

  it("measures 200,000 levels without recursing, and stops counting past the limit", () => {
    expect(nestingDepth(nested(200_000))).toBe(200_000);
    expect(nestingDepth(nested(200_000), 10)).toBe(11);
  });
});

describe("parseJsonDocument", () => {
  it("reads JSON nested up to the limit, like Go's encoding/json", () => {
    expect(parseJsonDocument(enc(nested(JSON_MAX_DEPTH)))).toBeInstanceOf(Array);
    expect(parseJsonDocument(enc(' \n{"a":[1]}\t'))).toEqual({ a: [1] });
  });

  it.each([
    ["nests one level deeper than the limit", enc(nested(JSON_MAX_DEPTH + 1)), /deeper than 10000 levels/],
    ["nests 200,000 levels", enc(nested(200_000)), /deeper than 10000 levels/],
    ["starts with a byte-order mark", new Uint8Array([0xef, 0xbb, 0xbf, ...enc("{}")]), /byte-order mark/],
    ["is not UTF-8", new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x7d]), /not valid UTF-8/],
    ["is not JSON", enc("{"), /not valid JSON/],
  ])("refuses a document that %s", (_what, bytes, message) => {
    expect(() => parseJsonDocument(bytes)).toThrow(JsonTextError);
    expect(() => parseJsonDocument(bytes)).toThrow(message);
  });

  it("reads a document accepted under older rules when not strict: a byte-order mark dropped, any depth", () => {
    expect(parseJsonDocument(new Uint8Array([0xef, 0xbb, 0xbf, ...enc('{"a":1}')]), { strict: false })).toEqual({
      a: 1,
    });
    expect(parseJsonDocument(enc(nested(200_000)), { strict: false })).toBeInstanceOf(Array);
    expect(() => parseJsonDocument(enc("{"), { strict: false })).toThrow(/not valid JSON/);
  });
});

describe("parseManifest", () => {
  const manifest = `{"schemaVersion":2,"config":{"mediaType":"${MediaType.OciConfig}","digest":"sha256:${"a".repeat(64)}","size":2},"layers":[],"x":${nested(20_000)}}`;
  const withBom = new Uint8Array([0xef, 0xbb, 0xbf, ...enc(manifest)]);

  it("refuses pushed bytes Go clients could not read, with 400 MANIFEST_INVALID", () => {
    for (const bytes of [enc(manifest), withBom]) {
      expect(() => parseManifest(bytes, MediaType.OciManifest, { pushed: true })).toThrow(
        expect.objectContaining({ code: "MANIFEST_INVALID", status: 400 }),
      );
    }
  });

  it("reads stored bytes as they were accepted, so the collector still follows them", () => {
    for (const bytes of [enc(manifest), withBom]) {
      const parsed = parseManifest(bytes, MediaType.OciManifest);
      expect(parsed.kind).toBe("manifest");
    }
  });
});
