/**
 * Properties of semantic tags and labels (core/tdfs/label.ts): valid labels round-trip, the
 * canonical form is a fixpoint that selects the same cells, and no input makes the parser throw
 * anything but LabelError.
 */
import fc from "fast-check";
import { describe, expect } from "vitest";
import { isValidTag, TAG_RULE } from "../../core/oci/reference.ts";
import {
  canonicalLabel,
  canonicalSelection,
  LabelError,
  MAX_RECTS,
  namedPartitions,
  NAMED_PARTITION_PREFIX,
  normalizeRects,
  parseLabel,
  selects,
  splitSemanticTag,
  type Rect,
} from "../../core/tdfs/label.ts";
import { selectionOf } from "../../core/tdfs/partition-image.ts";
import { rects, spelledRects } from "./properties-arbitraries.ts";
import { anyText, expectOnly, mutated, propertySuite, thrown } from "./properties-support.ts";

const { property } = propertySuite("properties-labels");

/** Every cell of the grid 0..n x 0..n that `rs` select: the ground truth for comparing selections. */
function cells(rs: readonly Rect[], n: number): string {
  const out: string[] = [];
  for (let r = 0; r <= n; r++) for (let c = 0; c <= n; c++) if (selects(rs, r, c)) out.push(`${r},${c}`);
  return out.join(" ");
}

/** The largest coordinate in `rs`, plus one: every cell where two selections could differ lies within it. */
const extent = (rs: readonly Rect[]): number => Math.max(...rs.flatMap((r) => [r.x2, r.y2])) + 1;

/** A base tag without "--", so that the semantic tag splits where it was joined. */
const baseTag = fc.stringMatching(new RegExp(`^${TAG_RULE}$`)).filter((t) => !t.includes("--"));

/** A root manifest's bytes with these annotations, as selectionOf reads them. */
const rootWith = (annotations: object): { bytes: Uint8Array } => ({
  bytes: new TextEncoder().encode(JSON.stringify({ schemaVersion: 2, annotations })),
});

const parseOrError = (label: string, named?: Record<string, string>): unknown => thrown(() => parseLabel(label, named));

describe("labels: valid ones", () => {
  property(
    "a spelled label parses to its rectangles, in order",
    fc.property(spelledRects(), ({ rects: rs, label }) => {
      expect(parseLabel(label)).toEqual(rs);
    }),
    5_000,
  );

  property(
    "a semantic tag splits into its base tag and its label, and is an OCI tag when short enough",
    fc.property(baseTag, spelledRects(), (base, { rects: rs, label }) => {
      const tag = `${base}--${label}`;
      expect(splitSemanticTag(tag)).toEqual({ base, label });
      expect(isValidTag(tag)).toBe(tag.length <= 128);
      expect(parseLabel(splitSemanticTag(tag)?.label ?? "")).toEqual(rs);
    }),
    2_000,
  );

  property(
    "a named partition selects what its value spells, alone or chained with rectangles",
    fc.property(spelledRects(), spelledRects(), (named, direct) => {
      fc.pre(named.rects.length + direct.rects.length <= MAX_RECTS);
      expect(parseLabel("p", { p: named.label })).toEqual(named.rects);
      expect(parseLabel(`${direct.label}--p`, { p: named.label })).toEqual([...direct.rects, ...named.rects]);
      // As the registry reads it: from the image's annotation, which may also redefine "all".
      const annotations = {
        [`${NAMED_PARTITION_PREFIX}p`]: named.label,
        [`${NAMED_PARTITION_PREFIX}all`]: direct.label,
      };
      const root = rootWith(annotations);
      expect(selectionOf("p", root)).toEqual(named.rects);
      expect(selectionOf("all", root)).toEqual(direct.rects);
    }),
    2_000,
  );
});

describe("labels: the canonical form", () => {
  // Small coordinates, so that the cells can be enumerated and compared one by one.
  // Small coordinates, so that the cells can be enumerated and compared one by one.
  property(
    "canonical form: parse(canonical(parse(x))) is the normalized union, selects the same cells, and is a fixpoint",
    fc.property(spelledRects({ small: 10, wide: false }), ({ label }) => {
      const parsed = parseLabel(label);
      const normal = normalizeRects(parsed);
      const canonical = canonicalSelection(parsed);
      expect(canonicalSelection(normal)).toBe(canonical);
      const n = extent(parsed);
      expect(cells(normal, n)).toBe(cells(parsed, n));
      if (normal.length > MAX_RECTS) {
        // A union may take more disjoint rectangles than it was written with: not a label then.
        expect(thrown(() => canonicalLabel(parsed))).toBeInstanceOf(LabelError);
        return;
      }
      expect(canonicalLabel(parsed)).toBe(canonical);
      const reparsed = parseLabel(canonical);
      expect(reparsed).toEqual(normal);
      expect(canonicalSelection(reparsed)).toBe(canonical);
    }),
    3_000,
  );

  property(
    "the canonical form does not depend on the order, duplication or overlap of rectangles",
    fc.property(
      rects({ small: 10 }).chain((rs) => fc.tuple(fc.constant(rs), fc.shuffledSubarray(rs, { minLength: rs.length }))),
      fc.nat(),
      ([rs, shuffled], dup) => {
        const canonical = canonicalSelection(rs);
        expect(canonicalSelection(shuffled)).toBe(canonical);
        expect(canonicalSelection([...rs, rs[dup % rs.length] as Rect])).toBe(canonical);
        // Adding a rectangle inside one already there changes nothing.
        const r = rs[dup % rs.length] as Rect;
        expect(canonicalSelection([...rs, { ...r, x1: r.x2, y1: r.y2 }])).toBe(canonical);
      },
    ),
    3_000,
  );
});

describe("labels: arbitrary input", () => {
  const labelAlphabet = "0123456789.-a+ e\u0660x\n";
  const labels = fc.oneof(
    anyText(),
    mutated(
      spelledRects().map((s) => s.label),
      labelAlphabet,
    ),
    fc
      .array(fc.constantFrom("0", "1", "9999", "10000", ".", "--", "-", "p", "all"), { maxLength: 40 })
      .map((parts) => parts.join("")),
  );

  property(
    "parseLabel throws nothing but LabelError, and what it accepts is valid rectangles",
    fc.property(labels, (label) => {
      const e = parseOrError(label);
      expectOnly(e, LabelError);
      if (e === undefined) {
        const rs = parseLabel(label);
        expect(rs.length).toBeGreaterThan(0);
        expect(rs.length).toBeLessThanOrEqual(MAX_RECTS);
        for (const r of rs) {
          expect(r.x1).toBeLessThanOrEqual(r.x2);
          expect(r.y1).toBeLessThanOrEqual(r.y2);
        }
      }
    }),
    10_000,
  );

  // A few names, so that generated labels use the names that generated annotations define.
  const partitionName = fc.constantFrom("a", "jetson", "p.1", "all", "Z-_");
  const namedKey = partitionName.map((n) => NAMED_PARTITION_PREFIX + n);

  property(
    "named partitions from arbitrary annotations never throw, and labels resolved through them throw only LabelError",
    fc.property(
      fc.dictionary(
        fc.oneof(
          anyText(8),
          anyText(8).map((s) => NAMED_PARTITION_PREFIX + s),
          namedKey,
        ),
        // Annotations are strings when a schema checked them; read from raw JSON, anything.
        fc.oneof(labels, fc.jsonValue({ maxDepth: 2 })) as fc.Arbitrary<string>,
      ),
      fc.oneof(
        labels,
        partitionName,
        fc.tuple(partitionName, labels).map(([n, l]) => `${n}--${l}`),
      ),
      (annotations, label) => {
        const named = namedPartitions(annotations);
        expectOnly(parseOrError(label, named), LabelError);
        // The way the registry and the CLI read a label: through the root manifest's annotations.
        const root = rootWith(annotations);
        expectOnly(
          thrown(() => selectionOf(label, root)),
          LabelError,
        );
        for (const name of Object.keys(named)) expectOnly(parseOrError(name, named), LabelError);
      },
    ),
    3_000,
  );

  property(
    "splitSemanticTag splits any string at its first run of dashes, before a label that starts with no dash",
    fc.property(fc.oneof(anyText(), mutated(fc.constant("v1--0.0.1.1"), "-a0")), (tag) => {
      const split = splitSemanticTag(tag);
      const first = tag.indexOf("--");
      expect(split === undefined).toBe(first < 0);
      if (!split) return;
      expect(`${split.base}--${split.label}`).toBe(tag);
      expect(split.label.startsWith("-")).toBe(false);
      expect(split.base.slice(first)).toMatch(/^-*$/);
    }),
    5_000,
  );
});
