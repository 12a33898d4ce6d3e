/**
 * Properties of the field's JSON (core/tdfs/field.ts): the reference tools' golden vector and any
 * generated field survive serialize -> parse -> serialize byte for byte, and no input makes the
 * parser throw anything but FieldError.
 */
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { sha256 } from "../../core/oci/digest.ts";
import { FieldError, parseField, serializeField, type Field } from "../../core/tdfs/field.ts";
import { field } from "./properties-arbitraries.ts";
import { anyText, expectOnly, mutated, propertySuite, thrown } from "./properties-support.ts";

const { property } = propertySuite("properties-field");

// The reference tools' bytes (test/fixtures is the project's copy of shared/compat).
const GOLDEN_TEXT = readFileSync(new URL("../fixtures/tdfs-field-2x2.json", import.meta.url), "utf8");
const GOLDEN_DIGEST = "sha256:b567c5cbf8f83794534164af7e5fcd4bf3f57387073133ce73951f5d84c7b9f1";

/** A field with trailing holes and empty rows beyond its allotments, as a parsed blob may list. */
const widened = fc
  .tuple(field(), fc.array(fc.nat({ max: 4 }), { maxLength: 6 }), fc.array(fc.nat({ max: 3 }), { maxLength: 3 }))
  .map(([f, extraCols, extraRows]): Field => {
    const widths: number[] = [];
    for (const a of f.allotments) {
      while (widths.length <= a.row) widths.push(0);
      widths[a.row] = Math.max(widths[a.row] ?? 0, a.col + 1);
    }
    const rowWidths = [...widths.map((w, r) => w + (extraCols[r] ?? 0)), ...extraRows];
    return { ...f, rowWidths };
  });

/** A field's bytes, checked to round-trip: what the property says of every field it is given. */
function roundTrip(f: Field): void {
  const text = serializeField(f);
  const parsed = parseField(text);
  expect(serializeField(parsed)).toBe(text);
  expect(parseField(new TextEncoder().encode(text))).toEqual(parsed);
  expect(parsed.allotments).toEqual(f.allotments);
  expect(parsed.owner).toBe(f.owner);
}

describe("field: the golden vector", () => {
  it("parses and serializes again to the same 789 bytes and digest", async () => {
    const text = serializeField(parseField(GOLDEN_TEXT));
    expect(text).toBe(GOLDEN_TEXT);
    expect(text.length).toBe(789);
    expect(await sha256(text)).toBe(GOLDEN_DIGEST);
  });

  property(
    "a mutated golden vector throws only FieldError, and once accepted serializes to a fixpoint",
    fc.property(mutated(fc.constant(GOLDEN_TEXT), '0123456789abcdef",:{}[] -\\"\u00e9'), (text) => {
      const e = thrown(() => parseField(text));
      expectOnly(e, FieldError);
      if (e === undefined) roundTrip(parseField(text));
    }),
    5_000,
  );
});

describe("field: generated fields", () => {
  property(
    "serialize -> parse gives the same field, and serializing again gives the same bytes",
    fc.property(field(), (f) => {
      roundTrip(f);
      expect(parseField(serializeField(f))).toEqual(f);
    }),
    3_000,
  );

  property(
    "a field listing trailing holes and empty rows keeps them through the round trip",
    fc.property(widened, (f) => {
      roundTrip(f);
      const parsed = parseField(serializeField(f));
      const implied = serializeField({ allotments: f.allotments, owner: f.owner });
      // The widths are kept exactly when they say more than the allotments do.
      expect(parsed.rowWidths === undefined).toBe(serializeField(f) === implied);
    }),
    3_000,
  );
});

describe("field: arbitrary input", () => {
  property(
    "any JSON text or bytes throw nothing but FieldError",
    fc.property(
      fc.oneof(
        fc.json({ maxDepth: 4 }),
        anyText(),
        fc.jsonValue({ maxDepth: 3 }).map((rows) => JSON.stringify({ rows, rows_size: 1, owner: "" })),
        fc
          .jsonValue({ maxDepth: 2 })
          .map((cell) =>
            JSON.stringify({ rows: [{ allotments: [cell], allotments_size: 1 }], rows_size: 1, owner: "" }),
          ),
        fc.uint8Array({ maxLength: 64 }),
      ),
      (input) => {
        expectOnly(
          thrown(() => parseField(input)),
          FieldError,
        );
      },
    ),
    5_000,
  );

  property(
    "serializeField of a hand-made field throws nothing but FieldError",
    fc.property(
      fc.record({
        allotments: fc.array(
          fc.record({
            row: fc.oneof(fc.integer({ min: -2, max: 12 }), fc.double()),
            col: fc.oneof(fc.integer({ min: -2, max: 12 }), fc.constant(10_000)),
            digest: fc.oneof(fc.constant(""), fc.constant("a".repeat(64)), anyText(70)),
            diffid: fc.oneof(fc.constant(""), fc.constant("b".repeat(64))),
          }),
          { maxLength: 6 },
        ),
        owner: anyText(8),
        rowWidths: fc.option(fc.array(fc.oneof(fc.integer({ min: -1, max: 14 }), fc.double()), { maxLength: 14 }), {
          nil: undefined,
        }),
      }),
      (f) => {
        const e = thrown(() => serializeField(f as Field));
        expectOnly(e, FieldError);
        // -0 is a valid coordinate that the text spells 0: compare the numbers, not their signs.
        const unsigned = f.allotments.map((a) => ({ ...a, row: a.row + 0, col: a.col + 0 }));
        if (e === undefined) expect(parseField(serializeField(f as Field)).allotments).toEqual(unsigned);
      },
    ),
    5_000,
  );
});
