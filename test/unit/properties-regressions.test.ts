/**
 * What the property tests (properties-*.test.ts) found, each kept as the concrete shrunk input
 * that failed, so that the case stays checked whatever seed later runs use.
 */
import { describe, expect, it } from "vitest";
import { InputError } from "../../builder-cli/src/spec/errors.ts";
import { parseManifest } from "../../core/oci/manifest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { parseChallenge } from "../../core/oci/token-auth.ts";
import { parseField, serializeField } from "../../core/tdfs/field.ts";
import { parsePartitions } from "../../builder-cli/src/spec/partitions.ts";
import {
  canonicalLabel,
  canonicalSelection,
  LabelError,
  namedPartitions,
  parseLabel,
  splitSemanticTag,
} from "../../core/tdfs/label.ts";
import { selectionOf } from "../../core/tdfs/partition-image.ts";
import { parseContentRange, parseRange } from "../../worker/http-ranges.ts";
import { thrown } from "./properties-support.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("labels", () => {
  it("splits 0---0.0.0.0 as base 0- and label 0.0.0.0 (it was base 0 and label -0.0.0.0, never a valid label)", () => {
    expect(splitSemanticTag("0---0.0.0.0")).toEqual({ base: "0-", label: "0.0.0.0" });
    expect(splitSemanticTag("v1----jetson")).toEqual({ base: "v1--", label: "jetson" });
    expect(splitSemanticTag("v1---")).toEqual({ base: "v1-", label: "" });
  });

  it('ignores a named partition whose annotation is not a string ({"2dfs.partition.A":0} threw a TypeError)', () => {
    const annotations = { "2dfs.partition.A": 0 } as unknown as Record<string, string>;
    expect(namedPartitions(annotations)).toEqual({});
    expect(() => parseLabel("A", namedPartitions(annotations))).toThrow(LabelError);
    const root = { bytes: enc(JSON.stringify({ schemaVersion: 2, annotations })) };
    expect(() => selectionOf("A", root)).toThrow(/unknown partition name "A"/);
  });

  // Six rectangles whose union takes 17 disjoint ones: its canonical string was no longer a label.
  const sixRects = "0.2.7.2--1.4.3.4--2.0.2.1--0.0.4.0--5.0.5.1--7.0.8.0";

  it(`refuses a canonical label for ${sixRects}, whose canonical form takes 17 rectangles`, () => {
    const rects = parseLabel(sixRects);
    expect(() => parseLabel(canonicalSelection(rects))).toThrow(/too many rectangles/);
    expect(() => canonicalLabel(rects)).toThrow(LabelError);
    expect(() => canonicalLabel(rects)).toThrow(/takes 17 rectangles in canonical form, more than 16/);
  });

  it(`refuses a 2dfs.json partition ${sixRects} the registry could not read back in canonical form`, () => {
    const cells = [
      { row: 0, col: 0 },
      { row: 8, col: 4 },
    ];
    expect(() => parsePartitions({ p: sixRects }, "2dfs.json", cells)).toThrow(InputError);
    expect(() => parsePartitions({ p: sixRects }, "2dfs.json", cells)).toThrow(
      /2dfs\.json: partitions\.p: the selection takes 17 rectangles in canonical form/,
    );
    // The same cells in fewer pieces are stored as before: canonical, and readable again.
    const stored = parsePartitions({ p: "0.0.1.1--1.0.1.2" }, "2dfs.json", cells);
    expect(stored).toEqual({ p: "0.0.0.1--1.0.1.2" });
    expect(parseLabel("p", stored)).toEqual(parseLabel("0.0.0.1--1.0.1.2"));
  });
});

describe("Range of a blob GET", () => {
  it("echoes at most 200 characters of an unsatisfiable Range (bytes=<a thousand nines>- was echoed whole)", () => {
    const header = `bytes=${"9".repeat(1_000)}-`;
    expect(thrown(() => parseRange(header, 10))).toMatchObject({
      code: "RANGE_INVALID",
      status: 416,
      detail: { range: header.slice(0, 200), size: 10 },
    });
  });
});

describe("Content-Range of an upload PATCH", () => {
  const malformed = expect.objectContaining({ code: "BLOB_UPLOAD_INVALID", status: 400 });

  it("refuses bytes 00-0/0, whose complete length does not exceed its last byte (it was taken as 0-0)", () => {
    expect(() => parseContentRange("bytes 00-0/0")).toThrow(malformed);
    expect(() => parseContentRange("bytes 0-9/5")).toThrow(malformed);
    expect(parseContentRange("bytes 0-9/10")).toEqual({ start: 0, end: 9 });
    expect(parseContentRange("bytes 0-9/*")).toEqual({ start: 0, end: 9 });
  });

  it("refuses 10000000000000000-0, a position no double holds exactly (it was taken, rounded)", () => {
    expect(() => parseContentRange("10000000000000000-0")).toThrow(malformed);
    expect(() => parseContentRange("0-9007199254740993")).toThrow(malformed);
    expect(parseContentRange(`0-${Number.MAX_SAFE_INTEGER}`)).toEqual({ start: 0, end: Number.MAX_SAFE_INTEGER });
  });
});

describe("manifests", () => {
  it("reads an index without mediaType sent as application/json by its shape (it was refused as an unsupported media type)", () => {
    const index = enc('{"schemaVersion":2,"manifests":[]}');
    expect(parseManifest(index, "application/json", { pushed: true })).toMatchObject({
      kind: "index",
      mediaType: MediaType.OciIndex,
    });
    const manifest = enc(
      `{"schemaVersion":2,"config":{"mediaType":"${MediaType.OciConfig}","digest":"sha256:${"a".repeat(64)}","size":2},"layers":[]}`,
    );
    expect(parseManifest(manifest, "application/json; charset=utf-8")).toMatchObject({
      kind: "manifest",
      mediaType: MediaType.OciManifest,
    });
    // Still refused: a shape that is neither, and a specific Content-Type that the body contradicts.
    expect(() => parseManifest(enc('{"schemaVersion":2}'), "application/json")).toThrow(
      /unsupported manifest media type/,
    );
    expect(() =>
      parseManifest(
        enc(`{"mediaType":"${MediaType.OciIndex}","schemaVersion":2,"manifests":[]}`),
        MediaType.OciManifest,
      ),
    ).toThrow(/does not match Content-Type/);
  });
});

describe("WWW-Authenticate", () => {
  it('reads Basic, Basic realm="" as the first challenge, without the second one\'s realm (it took realm "")', () => {
    expect(parseChallenge('Basic, Basic realm=""')).toEqual({ scheme: "basic" });
    // The case that matters: the token flow went to the realm of a later Basic challenge.
    expect(
      parseChallenge('Bearer realm="https://auth.example/token",service="registry", Basic realm="registry"'),
    ).toEqual({ scheme: "bearer", realm: "https://auth.example/token", service: "registry" });
  });

  it("finds a Bearer challenge after one of another scheme (Negotiate abc==, Bearer ... was ignored)", () => {
    expect(parseChallenge('Negotiate abc==, Bearer realm="https://auth.example/token"')).toEqual({
      scheme: "bearer",
      realm: "https://auth.example/token",
    });
    expect(parseChallenge('Basic realm = "spaced"')).toEqual({ scheme: "basic", realm: "spaced" });
  });
});

describe("field", () => {
  it('reads "row":-0 of a cell as row 0 (the parsed allotment kept -0, unequal to the field it describes)', () => {
    const hex = (c: string): string => c.repeat(64);
    const text = `{"rows":[{"allotments":[{"row":-0,"col":-0,"digest":"${hex("a")}","diffid":"${hex("b")}"}],"allotments_size":1}],"rows_size":1,"owner":""}`;
    const [cell] = parseField(text).allotments;
    expect(Object.is(cell?.row, 0) && Object.is(cell?.col, 0)).toBe(true);
    expect(serializeField(parseField(text))).toBe(text.replaceAll("-0", "0"));
  });
});
