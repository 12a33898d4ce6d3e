import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { sha256 } from "../../core/oci/digest.ts";
import { FieldError, fieldFromAllotments, parseField, serializeField, type Allotment } from "../../core/tdfs/field.ts";

const GOLDEN = new Uint8Array(readFileSync(new URL("../fixtures/tdfs-field-2x2.json", import.meta.url)));
const GOLDEN_DIGEST = "sha256:b567c5cbf8f83794534164af7e5fcd4bf3f57387073133ce73951f5d84c7b9f1";

const hex = (n: number, salt = "a"): string => (salt + n.toString(16)).padStart(64, "0");
const cell = (row: number, col: number): Allotment => ({
  row,
  col,
  digest: hex(row * 100 + col, "d"),
  diffid: hex(row * 100 + col, "e"),
});
const wire = (row: number, col: number, digest = "", diffid = ""): string =>
  `{"row":${row},"col":${col},"digest":"${digest}","diffid":"${diffid}"}`;
const full = (a: Allotment): string => wire(a.row, a.col, a.digest, a.diffid);
const rowJson = (cells: string[]): string => `{"allotments":[${cells.join(",")}],"allotments_size":${cells.length}}`;
const fieldJson = (rows: string[], owner = ""): string =>
  `{"rows":[${rows.join(",")}],"rows_size":${rows.length},"owner":${JSON.stringify(owner)}}`;

describe("field: the golden vector", () => {
  it("is the 789 bytes with the published digest", async () => {
    expect(GOLDEN.length).toBe(789);
    expect(await sha256(GOLDEN)).toBe(GOLDEN_DIGEST);
  });

  it("parses into four allotments, row-major", () => {
    const field = parseField(GOLDEN);
    expect(field.owner).toBe("");
    expect(field.rowWidths).toBeUndefined();
    expect(field.allotments.map((a) => [a.row, a.col])).toEqual([
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
    ]);
    expect(field.allotments[2]).toEqual({
      row: 1,
      col: 0,
      digest: "ba23244b835211f0cc7876851770b60cd183fb5b1c874c83d5108e5ba9c73999",
      diffid: "dd377c1de373dd32503f845b14c0ef7c6243f8169e01bf95277641ec62607e6d",
    });
  });

  it("serializes back to the same bytes and digest, from bytes and from a string", async () => {
    const out = serializeField(parseField(GOLDEN));
    expect(new TextEncoder().encode(out)).toEqual(GOLDEN);
    expect(await sha256(out)).toBe(GOLDEN_DIGEST);
    expect(serializeField(parseField(new TextDecoder().decode(GOLDEN)))).toBe(out);
  });

  it("is what fieldFromAllotments builds from its cells in any order", () => {
    const cells = parseField(GOLDEN).allotments;
    const built = fieldFromAllotments([...cells].reverse());
    expect(new TextEncoder().encode(serializeField(built))).toEqual(GOLDEN);
  });
});

describe("field: sparse fields", () => {
  it("writes holes and empty rows the way the reference builder does", () => {
    const field = fieldFromAllotments([cell(2, 1), cell(0, 0)]);
    expect(serializeField(field)).toBe(
      fieldJson([rowJson([full(cell(0, 0))]), rowJson([]), rowJson([wire(2, 0), full(cell(2, 1))])]),
    );
  });

  it("round-trips a 3x3 field with a hole in the middle", () => {
    const cells = [0, 1, 2]
      .flatMap((r) => [0, 1, 2].map((c) => cell(r, c)))
      .filter((a) => !(a.row === 1 && a.col === 1));
    const text = fieldJson([
      rowJson(cells.slice(0, 3).map(full)),
      rowJson([full(cell(1, 0)), wire(1, 1), full(cell(1, 2))]),
      rowJson(cells.slice(5).map(full)),
    ]);
    const field = parseField(text);
    expect(field.allotments).toEqual(cells);
    expect(field.rowWidths).toBeUndefined();
    expect(serializeField(field)).toBe(text);
    expect(serializeField(fieldFromAllotments(cells))).toBe(text);
  });

  it("keeps trailing holes and trailing empty rows that a parsed field lists", () => {
    const text = fieldJson([
      rowJson([full(cell(0, 0)), wire(0, 1), wire(0, 2)]),
      rowJson([]),
      rowJson([wire(2, 0)]),
      rowJson([]),
    ]);
    const field = parseField(text);
    expect(field.allotments).toEqual([cell(0, 0)]);
    expect(field.rowWidths).toEqual([3, 0, 1, 0]);
    expect(serializeField(field)).toBe(text);
  });

  it("round-trips an empty field and a field of holes only", () => {
    const empty = fieldJson([]);
    expect(parseField(empty)).toEqual({ allotments: [], owner: "" });
    expect(serializeField(parseField(empty))).toBe(empty);
    expect(serializeField(fieldFromAllotments([]))).toBe(empty);
    const holes = fieldJson([rowJson([]), rowJson([wire(1, 0)])]);
    expect(serializeField(parseField(holes))).toBe(holes);
  });

  it("writes the owner as Go does, escaping <, > and &", () => {
    const field = fieldFromAllotments([cell(0, 0)], 'a<b>&"c"\u2028');
    const text = serializeField(field);
    expect(text.endsWith(`"owner":"a\\u003cb\\u003e\\u0026\\"c\\"\\u2028"}`)).toBe(true);
    expect(parseField(text).owner).toBe('a<b>&"c"\u2028');
    expect(serializeField(parseField(text))).toBe(text);
  });

  it("refuses rowWidths that would drop an allotment", () => {
    expect(() => serializeField({ allotments: [cell(0, 2)], owner: "", rowWidths: [2] })).toThrow(
      /rowWidths\[0\] is 2/,
    );
    expect(() => serializeField({ allotments: [cell(1, 0)], owner: "", rowWidths: [1] })).toThrow(
      /rowWidths lists 1 rows, allotments need 2/,
    );
  });

  it("refuses to serialize a field whose allotments are out of order", () => {
    expect(() => serializeField({ allotments: [cell(1, 0), cell(0, 0)], owner: "" })).toThrow(/row-major/);
  });
});

describe("field: malformed blobs are refused with a reason", () => {
  const good = (digest = hex(1, "d"), diffid = hex(1, "e")): string =>
    fieldJson([rowJson([wire(0, 0, digest, diffid)])]);
  const cases: [string, string, RegExp][] = [
    ["not JSON", "{", /not valid UTF-8 JSON/],
    ["a JSON array", "[]", /must be a JSON object/],
    ["missing owner", `{"rows":[],"rows_size":0}`, /no "owner"/],
    ["an unknown top-level key", `{"rows":[],"rows_size":0,"owner":"","extra":1}`, /unknown key "extra"/],
    ["rows that are null", `{"rows":null,"rows_size":0,"owner":""}`, /rows must be an array/],
    ["rows_size that disagrees", `{"rows":[],"rows_size":1,"owner":""}`, /rows_size is 1 but rows has 0/],
    ["a non-string owner", `{"rows":[],"rows_size":0,"owner":7}`, /owner must be a string/],
    ["allotments_size that disagrees", fieldJson([`{"allotments":[],"allotments_size":2}`]), /allotments_size is 2/],
    [
      "an unknown cell key",
      fieldJson([rowJson([`{"row":0,"col":0,"digest":"","diffid":"","filename":"x"}`])]),
      /unknown key "filename"/,
    ],
    ["a missing diffid key", fieldJson([rowJson([`{"row":0,"col":0,"digest":""}`])]), /no "diffid"/],
    ["uppercase hex", good(hex(1, "D")), /digest of cell \(0,0\) is not 64 lowercase hex/],
    ["short hex", good("abc"), /digest of cell \(0,0\)/],
    ["a sha256: prefix", good(`sha256:${hex(1, "d")}`), /not 64 lowercase hex/],
    ["non-hex characters", good(hex(1, "g")), /digest of cell/],
    ["a digest without diffid", good(hex(1, "d"), ""), /diffid of cell \(0,0\)/],
    ["a diffid without digest", good("", hex(1, "e")), /digest of cell \(0,0\)/],
    ["a negative row", fieldJson([rowJson([wire(-1, 0)])]), /row is negative: -1/],
    ["a negative column", fieldJson([rowJson([wire(0, -2)])]), /col is negative: -2/],
    ["a fractional column", fieldJson([rowJson([wire(0, 0.5)])]), /col must be a non-negative integer, got 0.5/],
    [
      "a string coordinate",
      fieldJson([rowJson([`{"row":"0","col":0,"digest":"","diffid":""}`])]),
      /row must be a non-negative integer, got "0"/,
    ],
    ["a coordinate beyond the bound", fieldJson([rowJson([wire(0, 10000)])]), /beyond the largest coordinate 9999/],
    ["a duplicate cell", fieldJson([rowJson([wire(0, 0), wire(0, 0)])]), /duplicate cell \(0,0\)/],
    ["a cell out of its position", fieldJson([rowJson([wire(0, 1)])]), /claims cell \(0,1\) but sits at \(0,0\)/],
    [
      "a cell in the wrong row",
      fieldJson([rowJson([]), rowJson([wire(0, 0)])]),
      /claims cell \(0,0\) but sits at \(1,0\)/,
    ],
    ["a byte-order mark", `\uFEFF${fieldJson([])}`, /not valid UTF-8 JSON/],
  ];
  it.each(cases)("refuses %s", (_name, text, reason) => {
    expect(() => parseField(text)).toThrow(FieldError);
    expect(() => parseField(text)).toThrow(reason);
  });

  it("refuses bytes that are not UTF-8", () => {
    expect(() => parseField(new Uint8Array([0x7b, 0xff, 0x7d]))).toThrow(/not valid UTF-8 JSON/);
  });

  it("refuses more rows than the coordinate bound allows", () => {
    const rows = Array.from({ length: 10001 }, () => rowJson([]));
    expect(() => parseField(fieldJson(rows))).toThrow(/10001 rows, at most 10000/);
  });
});

describe("fieldFromAllotments", () => {
  it("sorts row-major and copies its cells", () => {
    const input = [cell(1, 0), cell(0, 2), cell(0, 1)];
    const field = fieldFromAllotments(input, "me");
    expect(field).toEqual({ allotments: [cell(0, 1), cell(0, 2), cell(1, 0)], owner: "me" });
    expect(field.allotments[0]).not.toBe(input[2]);
  });

  const bad: [string, Allotment[], RegExp][] = [
    ["a duplicate cell", [cell(1, 1), cell(0, 0), { ...cell(1, 1), digest: hex(9) }], /duplicate cell \(1,1\)/],
    ["a negative coordinate", [{ ...cell(0, 0), row: -1 }], /row is negative/],
    ["a non-integer coordinate", [{ ...cell(0, 0), col: 1.5 }], /col must be a non-negative integer/],
    ["a hole", [{ row: 0, col: 0, digest: "", diffid: "" }], /a hole is not an allotment/],
    ["bad hex", [{ ...cell(0, 0), diffid: "xyz" }], /diffid of cell \(0,0\)/],
  ];
  it.each(bad)("refuses %s", (_name, cells, reason) => {
    expect(() => fieldFromAllotments(cells)).toThrow(FieldError);
    expect(() => fieldFromAllotments(cells)).toThrow(reason);
  });
});
