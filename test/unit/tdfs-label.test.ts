import { describe, expect, it } from "vitest";
import { fieldFromAllotments, type Allotment } from "../../core/tdfs/field.ts";
import {
  canonicalSelection,
  LabelError,
  MAX_RECTS,
  namedPartitions,
  normalizeRects,
  parseLabel,
  selectAllotments,
  selects,
  splitSemanticTag,
  type Rect,
} from "../../core/tdfs/label.ts";

const rect = (x1: number, y1: number, x2: number, y2: number): Rect => ({ x1, y1, x2, y2 });
const canon = (label: string, named?: Record<string, string>): string => canonicalSelection(parseLabel(label, named));

/** Every cell of a w x h grid that `rects` select: the ground truth canonical forms are checked against. */
function cells(rects: readonly Rect[], size = 8): string[] {
  const out: string[] = [];
  for (let r = 0; r < size; r++) for (let c = 0; c < size; c++) if (selects(rects, r, c)) out.push(`${r},${c}`);
  return out;
}

describe("splitSemanticTag", () => {
  it("splits at the first --", () => {
    expect(splitSemanticTag("v1--0.0.1.1")).toEqual({ base: "v1", label: "0.0.1.1" });
    expect(splitSemanticTag("v1--0.0.0.2--2.0.2.2")).toEqual({ base: "v1", label: "0.0.0.2--2.0.2.2" });
    expect(splitSemanticTag("model-v1.2--jetson")).toEqual({ base: "model-v1.2", label: "jetson" });
    expect(splitSemanticTag("v1--")).toEqual({ base: "v1", label: "" });
  });

  it("leaves plain tags alone, including single dashes", () => {
    expect(splitSemanticTag("latest")).toBeUndefined();
    expect(splitSemanticTag("v1-rc-2")).toBeUndefined();
  });
});

describe("parseLabel", () => {
  it("parses one rectangle, x = row and y = column", () => {
    expect(parseLabel("0.1.2.3")).toEqual([rect(0, 1, 2, 3)]);
    expect(selects(parseLabel("0.1.2.3"), 2, 3)).toBe(true);
    expect(selects(parseLabel("0.1.2.3"), 3, 2)).toBe(false);
  });

  it("parses chained rectangles in order, overlaps included", () => {
    expect(parseLabel("0.0.0.2--2.0.2.2--0.0.1.1")).toEqual([rect(0, 0, 0, 2), rect(2, 0, 2, 2), rect(0, 0, 1, 1)]);
  });

  it("accepts the largest coordinate and redundant leading zeros, as the reference does", () => {
    expect(parseLabel("9999.0.9999.9999")).toEqual([rect(9999, 0, 9999, 9999)]);
    expect(canon("00.01.1.01")).toBe("0.1.1.1");
  });

  it(`accepts ${MAX_RECTS} rectangles`, () => {
    expect(parseLabel(Array(MAX_RECTS).fill("0.0.0.0").join("--"))).toHaveLength(MAX_RECTS);
  });

  it("resolves named partitions, alone and mixed with coordinates", () => {
    const named = { jetson: "0.0.0.2--2.0.2.2", "edge-small": "1.1.1.1" };
    expect(parseLabel("jetson", named)).toEqual([rect(0, 0, 0, 2), rect(2, 0, 2, 2)]);
    expect(canon("jetson", named)).toBe(canon("0.0.0.2--2.0.2.2"));
    expect(parseLabel("edge-small--0.0.0.0", named)).toEqual([rect(1, 1, 1, 1), rect(0, 0, 0, 0)]);
  });

  const malformed: [string, string, RegExp][] = [
    ["an empty label", "", /label "" is empty/],
    ["a trailing --", "0.0.1.1--", /empty part/],
    ["a doubled --", "0.0.1.1----1.1.1.1", /empty part/],
    ["three numbers", "0.0.1", /"0.0.1" in label "0.0.1" is not x1.y1.x2.y2/],
    ["five numbers", "0.0.1.1.1", /is not x1.y1.x2.y2/],
    ["an empty number", "0..1.1", /"" in "0..1.1" is not a decimal number/],
    ["a leading +", "+1.0.1.1", /"\+1" in "\+1.0.1.1" is not a decimal number/],
    ["a negative number", "-1.0.1.1", /"-1" in "-1.0.1.1" is not a decimal number/],
    ["a hex number", "0x1.0.1.1", /"0x1" .* is not a decimal number/],
    ["an exponent", "1e1.0.20.1", /"1e1" .* is not a decimal number/],
    ["a fraction written with a comma", "0,5.0.1.1", /"0,5" .* is not a decimal number/],
    ["a space", "0.0.1. 1", /" 1" .* is not a decimal number/],
    ["a number beyond the bound", "0.0.10000.1", /10000 in "0.0.10000.1" is beyond the largest coordinate 9999/],
    ["a huge number", "0.0.99999999999999999999.1", /beyond the largest coordinate/],
    ["an inverted row range", "2.0.1.1", /"2.0.1.1" is inverted: x1 2 > x2 1/],
    ["an inverted column range", "0.3.1.1", /"0.3.1.1" is inverted: y1 3 > y2 1/],
    [
      "too many rectangles",
      Array(MAX_RECTS + 1)
        .fill("0.0.0.0")
        .join("--"),
      /too many rectangles \(more than 16\)/,
    ],
    ["an unknown name", "jetson", /unknown partition name "jetson" \(this image names no partitions\)/],
  ];
  it.each(malformed)("refuses %s, explaining the syntax", (_name, label, reason) => {
    let error: unknown;
    try {
      parseLabel(label);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LabelError);
    expect((error as LabelError).reason).toMatch(reason);
    expect((error as LabelError).message).toContain("<tag>--x1.y1.x2.y2[--x1.y1.x2.y2...]");
    expect((error as LabelError).message).toContain("<tag>--<name>");
  });

  it("names the known partitions when a name is unknown", () => {
    expect(() => parseLabel("nano", { jetson: "0.0.0.0", orin: "1.1.1.1" })).toThrow(
      /unknown partition name "nano" \(this image names: jetson, orin\)/,
    );
  });

  it("does not resolve names through the object prototype", () => {
    expect(() => parseLabel("constructor", {})).toThrow(/unknown partition name "constructor"/);
    expect(() => parseLabel("toString", {})).toThrow(LabelError);
  });

  it("refuses a named partition whose value is malformed, saying which", () => {
    expect(() => parseLabel("bad", { bad: "0.0.1" })).toThrow(/"0.0.1" in named partition "bad" is not x1.y1.x2.y2/);
    expect(() => parseLabel("bad", { bad: "" })).toThrow(/named partition "bad" is empty/);
    expect(() => parseLabel("loop", { loop: "loop", other: "0.0.0.0" })).toThrow(/"loop" in named partition "loop"/);
    expect(() =>
      parseLabel("big", {
        big: Array(MAX_RECTS + 1)
          .fill("0.0.0.0")
          .join("--"),
      }),
    ).toThrow(/too many rectangles/);
  });

  it("counts a name's rectangles towards the bound", () => {
    const named = { eight: Array(8).fill("0.0.0.0").join("--") };
    expect(parseLabel("eight--eight", named)).toHaveLength(16);
    expect(() => parseLabel("eight--eight--0.0.0.0", named)).toThrow(/too many rectangles/);
  });
});

describe("canonicalSelection", () => {
  it("gives one form for labels that select the same cells", () => {
    const forms = [
      "0.0.1.1",
      "0.0.0.1--1.0.1.1",
      "1.1.1.1--0.0.1.1--0.1.0.1",
      "0.0.1.0--0.1.1.1",
      "0.0.0.0--0.1.0.1--1.0.1.0--1.1.1.1",
    ];
    expect(new Set(forms.map((f) => canon(f)))).toEqual(new Set(["0.0.1.1"]));
  });

  it("merges overlaps and unions, and ignores order and repetition", () => {
    expect(canon("0.0.2.2--1.1.3.3")).toBe(canon("1.1.3.3--0.0.2.2--0.0.2.2"));
    expect(canon("0.0.0.5--0.3.0.9")).toBe("0.0.0.9");
    expect(canon("0.0.0.1--0.2.0.3")).toBe("0.0.0.3"); // touching intervals join
  });

  it("keeps different selections apart", () => {
    expect(canon("0.0.1.1")).not.toBe(canon("0.0.1.2"));
    expect(canon("0.0.0.0--2.0.2.0")).toBe("0.0.0.0--2.0.2.0"); // a gap row stays a gap
    expect(canon("0.0.0.0--0.2.0.2")).toBe("0.0.0.0--0.2.0.2");
  });

  it("writes an L shape as disjoint bands, row-major", () => {
    expect(normalizeRects(parseLabel("0.0.2.0--0.0.0.2"))).toEqual([rect(0, 0, 0, 2), rect(1, 0, 2, 0)]);
  });

  it("is empty for no rectangles", () => {
    expect(canonicalSelection([])).toBe("");
  });

  it("selects exactly the cells its input selects, and is a fixed point", () => {
    const labels = [
      "0.0.2.2--1.1.3.3",
      "0.0.0.5--2.2.4.3--1.4.6.4",
      "3.0.3.7--0.3.7.3",
      "0.0.7.7--2.2.3.3",
      "5.5.5.5--1.1.1.1--3.3.3.3",
    ];
    for (const label of labels) {
      const rects = parseLabel(label);
      const normal = normalizeRects(rects);
      expect(cells(normal)).toEqual(cells(rects));
      expect(canonicalSelection(normal)).toBe(canonicalSelection(rects));
      // The normal form's rectangles are disjoint: their areas add up to the cell count.
      const area = normal.reduce((n, r) => n + (r.x2 - r.x1 + 1) * (r.y2 - r.y1 + 1), 0);
      expect(area).toBe(cells(rects).length);
    }
  });
});

describe("selectAllotments", () => {
  const hex = (n: number): string => n.toString(16).padStart(64, "0");
  const a = (row: number, col: number): Allotment => ({
    row,
    col,
    digest: hex(row * 10 + col + 1),
    diffid: hex(row * 10 + col + 101),
  });
  // 3x3 with a hole at (1,1).
  const field = fieldFromAllotments(
    [0, 1, 2].flatMap((r) => [0, 1, 2].map((c) => a(r, c))).filter((x) => x.row !== 1 || x.col !== 1),
  );
  const picked = (label: string): string[] =>
    selectAllotments(field, parseLabel(label)).map((x) => `${x.row},${x.col}`);

  it("selects row-major, each allotment once, however the rectangles overlap", () => {
    expect(picked("1.0.2.2--0.0.2.1--0.0.0.0")).toEqual(["0,0", "0,1", "1,0", "1,2", "2,0", "2,1", "2,2"]);
  });

  it("never selects a hole", () => {
    expect(picked("1.1.1.1")).toEqual([]);
    expect(picked("0.0.1.1")).toEqual(["0,0", "0,1", "1,0"]);
  });

  it("selects nothing outside the field", () => {
    expect(picked("5.5.9.9")).toEqual([]);
  });
});

describe("namedPartitions", () => {
  it("collects 2dfs.partition.<name> annotations", () => {
    expect(
      namedPartitions({
        "2dfs.image.name": "model",
        "2dfs.partition.jetson": "0.0.0.2",
        "2dfs.partition.orin-nx": "1.0.1.2--2.2.2.2",
        "org.opencontainers.image.title": "x",
      }),
    ).toEqual({ jetson: "0.0.0.2", "orin-nx": "1.0.1.2--2.2.2.2" });
  });

  it("leaves out names a label could never spell", () => {
    expect(
      namedPartitions({
        "2dfs.partition.": "0.0.0.0",
        "2dfs.partition.1x": "0.0.0.0",
        "2dfs.partition.a--b": "0.0.0.0",
      }),
    ).toEqual({});
  });

  it("is empty without annotations", () => {
    expect(namedPartitions(undefined)).toEqual({});
  });
});
