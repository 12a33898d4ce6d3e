/**
 * Generators of the registry's own values (rectangles, labels, fields, digests), shared by the
 * property files so that each file generates them the same way.
 */
import fc from "fast-check";
import { fieldFromAllotments, MAX_COORDINATE, type Allotment, type Field } from "../../core/tdfs/field.ts";
import { MAX_RECTS, type Rect } from "../../core/tdfs/label.ts";

/** The type of what an arbitrary generates. */
export type Generated<A> = A extends fc.Arbitrary<infer R> ? R : never;

/** Bare lowercase hex of `bytes` bytes (64 characters for sha256). */
export const hexOf = (bytes: number): fc.Arbitrary<string> =>
  fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => Buffer.from(b).toString("hex"));

/** Bounds for generated rectangles: coordinates mostly up to `small`, and, when `wide`, anywhere up to the bound. */
export interface RectBounds {
  small?: number;
  wide?: boolean;
  maxLength?: number;
}

/**
 * A coordinate: mostly small, so that rectangles overlap the fields generated alongside them,
 * and when `wide` sometimes anywhere up to the bound, and the bound itself.
 */
export const coordinate = ({ small = 12, wide = true }: RectBounds = {}): fc.Arbitrary<number> =>
  wide
    ? fc.oneof(
        { weight: 8, arbitrary: fc.nat({ max: small }) },
        { weight: 1, arbitrary: fc.nat({ max: MAX_COORDINATE }) },
        { weight: 1, arbitrary: fc.constant(MAX_COORDINATE) },
      )
    : fc.nat({ max: small });

/** A valid rectangle (x1 <= x2, y1 <= y2). */
export const rect = (bounds: RectBounds = {}): fc.Arbitrary<Rect> => {
  const n = coordinate(bounds);
  return fc
    .tuple(n, n, n, n)
    .map(([a, b, c, d]) => ({ x1: Math.min(a, c), y1: Math.min(b, d), x2: Math.max(a, c), y2: Math.max(b, d) }));
};

/** One to MAX_RECTS rectangles, as a label may hold. */
export const rects = (bounds: RectBounds = {}): fc.Arbitrary<Rect[]> =>
  fc.array(rect(bounds), { minLength: 1, maxLength: bounds.maxLength ?? MAX_RECTS });

/** A decimal number as a label may spell it: with or without redundant leading zeros. */
const spelled = (n: number): fc.Arbitrary<string> => fc.nat({ max: 3 }).map((zeros) => "0".repeat(zeros) + String(n));

/** A label that spells `rs`, each number perhaps with leading zeros. */
export const labelOf = (rs: readonly Rect[]): fc.Arbitrary<string> =>
  fc
    .tuple(...rs.flatMap((r) => [r.x1, r.y1, r.x2, r.y2].map(spelled)))
    .map((nums) => rs.map((_, i) => nums.slice(i * 4, i * 4 + 4).join(".")).join("--"));

/** Rectangles and a label that spells them. */
export const spelledRects = (bounds: RectBounds = {}): fc.Arbitrary<{ rects: Rect[]; label: string }> =>
  rects(bounds).chain((rs) => labelOf(rs).map((label) => ({ rects: rs, label })));

/** An allotment's digest and diffid: independent hex, or the same (a plain tar's digest is its diffid). */
const contentIds = fc.oneof(
  fc.tuple(hexOf(32), hexOf(32)).map(([digest, diffid]) => ({ digest, diffid })),
  hexOf(32).map((h) => ({ digest: h, diffid: h })),
);

/**
 * A field of up to `maxCells` allotments on a `rows` x `cols` grid, holes and empty rows included
 * wherever no cell was drawn; owner any string.
 */
export const field = ({ rows = 8, cols = 8, maxCells = 24 } = {}): fc.Arbitrary<Field> =>
  fc
    .tuple(
      fc.uniqueArray(fc.tuple(fc.nat({ max: rows - 1 }), fc.nat({ max: cols - 1 })), {
        maxLength: maxCells,
        selector: ([r, c]) => `${r},${c}`,
      }),
      fc.array(contentIds, { minLength: maxCells, maxLength: maxCells }),
      fc.oneof(fc.constant(""), fc.string({ unit: "binary", maxLength: 16 })),
    )
    .map(([positions, ids, owner]) =>
      fieldFromAllotments(
        positions.map(([row, col], i) => ({ row, col, ...(ids[i] as { digest: string; diffid: string }) })),
        owner,
      ),
    );

/** Row-major order, as fields keep their allotments. */
export const rowMajor = (a: Allotment, b: Allotment): number => a.row - b.row || a.col - b.col;
