/**
 * Properties of the JSON text scanner the partition edits with (core/tdfs/json-splice.ts): for any
 * document JSON.parse accepts, however it is spaced and whatever its keys repeat, the spans it
 * finds hold exactly the values JSON.parse sees, and appending to an array keeps the rest intact.
 */
import fc from "fast-check";
import { describe, expect } from "vitest";
import { arrayAppendPoint, arrayElements, applyEdits, objectMembers, rootSpan } from "../../core/tdfs/json-splice.ts";
import { propertySuite } from "./properties-support.ts";

const { property } = propertySuite("properties-json-splice");

/** JSON's own whitespace, as a pretty-printer or a hand would put it between tokens. */
const whitespace = fc.array(fc.constantFrom("", " ", "\n", "\t", "\r\n  "), { minLength: 1, maxLength: 8 });

/**
 * `value` as JSON text with whitespace around every token, and, when `decoys`, each object's keys
 * written twice: first with a decoy value that the later one overrides, as JSON.parse reads it.
 */
function spaced(value: unknown, ws: readonly string[], decoys: boolean): string {
  let n = 0;
  const w = (): string => ws[n++ % ws.length] as string;
  const write = (v: unknown): string => {
    if (Array.isArray(v)) return `[${w()}${v.map((x) => `${w()}${write(x)}${w()}`).join(",")}${w()}]`;
    if (v !== null && typeof v === "object") {
      const members = Object.entries(v).flatMap(([k, x]) => {
        const key = `${w()}${JSON.stringify(k)}${w()}:${w()}`;
        return decoys ? [`${key}"decoy"${w()}`, `${key}${write(x)}${w()}`] : [`${key}${write(x)}${w()}`];
      });
      return `{${w()}${members.join(",")}${w()}}`;
    }
    return JSON.stringify(v);
  };
  return `${w()}${write(value)}${w()}`;
}

const document = fc.tuple(fc.jsonValue({ maxDepth: 4 }), whitespace, fc.boolean());

/** Checks every span below the value at `span` against the value JSON.parse gives it. */
function checkSpans(text: string, span: { start: number; end: number }, value: unknown): void {
  expect(JSON.parse(text.slice(span.start, span.end))).toEqual(value);
  if (Array.isArray(value)) {
    const elements = arrayElements(text, span);
    expect(elements).toHaveLength(value.length);
    elements.forEach((e, i) => checkSpans(text, e, value[i]));
  } else if (value !== null && typeof value === "object") {
    const members = objectMembers(text, span);
    expect([...members.keys()].sort()).toEqual(Object.keys(value).sort());
    for (const [k, e] of members) checkSpans(text, e, (value as Record<string, unknown>)[k]);
  }
}

describe("json-splice", () => {
  property(
    "the spans of members and elements hold exactly what JSON.parse reads, at any spacing, the last of repeated keys",
    fc.property(document, ([value, ws, decoys]) => {
      const text = spaced(value, ws, decoys);
      const parsed = JSON.parse(text);
      checkSpans(text, rootSpan(text), parsed);
    }),
    3_000,
  );

  property(
    "appending to an array gives the array with the items after it, and leaves every other byte as it was",
    fc.property(
      fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 5 }),
      fc.array(fc.jsonValue({ maxDepth: 1 }), { minLength: 1, maxLength: 3 }),
      whitespace,
      (array, items, ws) => {
        const text = spaced({ before: 1, list: array, after: [2] }, ws, false);
        const span = objectMembers(text, rootSpan(text)).get("list");
        if (!span) throw new Error("the list is a member");
        const edit = arrayAppendPoint(
          text,
          span,
          items.map((x) => JSON.stringify(x)),
        );
        const out = applyEdits(text, [edit]);
        // Through JSON text on both sides: -0 is written 0.
        const expected = JSON.stringify({ before: 1, list: [...array, ...items], after: [2] });
        expect(JSON.parse(out)).toEqual(JSON.parse(expected));
        expect(out.slice(0, edit.at) + out.slice(edit.at + edit.insert.length)).toBe(text);
      },
    ),
    3_000,
  );
});
