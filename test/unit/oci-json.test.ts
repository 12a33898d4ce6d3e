import { describe, expect, it } from "vitest";
import { JSON_MAX_DEPTH, JsonTextError, nestingDepth, parseJsonDocument } from "../../core/oci/json.ts";

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
});
