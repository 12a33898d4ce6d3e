/**
 * Editing values inside JSON text without re-encoding the rest. A partitioned image config must
 * be the original with only `rootfs.diff_ids` and `history` extended, and a partitioned manifest
 * the original with only its config and layers changed: re-encoding through JSON.parse/stringify
 * would lose what it cannot represent (integers beyond 2^53, Go's \u0026 escapes, whitespace), and
 * JSON.stringify overflows the stack on a document nested a few thousand levels deep. So the
 * edits are spliced into the original text instead.
 *
 * The scanner assumes text that JSON.parse has already accepted; it only finds value spans, and
 * never recurses into nested values, so any depth is safe.
 */

/** A value's extent in the text: [start, end). */
export interface Span {
  start: number;
  end: number;
}

/** Spans of the members of the object at `span`; a repeated key keeps its last value, as JSON.parse does. */
export function objectMembers(text: string, span: Span): Map<string, Span> {
  const members = new Map<string, Span>();
  let i = skipWhitespace(text, span.start + 1);
  if (text[i] === "}") return members;
  for (;;) {
    const keyEnd = scanValue(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    const valueStart = skipWhitespace(text, skipWhitespace(text, keyEnd) + 1); // past ':'
    const valueEnd = scanValue(text, valueStart);
    members.set(key, { start: valueStart, end: valueEnd });
    i = skipWhitespace(text, valueEnd);
    if (text[i] === "}") return members;
    i = skipWhitespace(text, i + 1); // past ','
  }
}

/** The span of the whole document's top-level value. */
export function rootSpan(text: string): Span {
  const start = skipWhitespace(text, 0);
  return { start, end: scanValue(text, start) };
}

/** Spans of the elements of the array at `span`, in order. */
export function arrayElements(text: string, span: Span): Span[] {
  const elements: Span[] = [];
  let i = skipWhitespace(text, span.start + 1);
  if (text[i] === "]") return elements;
  for (;;) {
    const end = scanValue(text, i);
    elements.push({ start: i, end });
    i = skipWhitespace(text, end);
    if (text[i] === "]") return elements;
    i = skipWhitespace(text, i + 1); // past ','
  }
}

/**
 * Text that, inserted at the returned offset, appends `items` (already JSON-encoded) to the
 * array at `span`: after its last element, so the original elements and spacing stay as they were.
 */
export function arrayAppendPoint(text: string, span: Span, items: readonly string[]): { at: number; insert: string } {
  const last = arrayElements(text, span).at(-1);
  if (!last) return { at: span.start + 1, insert: items.join(",") };
  return { at: last.end, insert: items.map((x) => `,${x}`).join("") };
}

/** Applies non-overlapping edits; each replaces [at, at + remove) with `insert`. */
export function applyEdits(text: string, edits: readonly { at: number; remove?: number; insert: string }[]): string {
  let out = text;
  for (const e of [...edits].sort((a, b) => b.at - a.at)) {
    out = out.slice(0, e.at) + e.insert + out.slice(e.at + (e.remove ?? 0));
  }
  return out;
}

function skipWhitespace(text: string, i: number): number {
  while (i < text.length && (text[i] === " " || text[i] === "\n" || text[i] === "\r" || text[i] === "\t")) i++;
  return i;
}

/** End of the value starting at `i`. */
function scanValue(text: string, i: number): number {
  const ch = text[i];
  if (ch === '"') {
    let j = i + 1;
    while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
    return j + 1;
  }
  if (ch === "{" || ch === "[") {
    // Skip to the matching bracket, stepping over strings whole so brackets inside them don't count.
    let depth = 0;
    let j = i;
    for (;;) {
      const c = text[j];
      if (c === '"') {
        j = scanValue(text, j);
        continue;
      }
      if (c === "{" || c === "[") depth++;
      else if (c === "}" || c === "]") depth--;
      j++;
      if (depth === 0) return j;
    }
  }
  // A number, true, false or null: runs to the next delimiter.
  let j = i;
  while (j < text.length && !",]} \n\r\t".includes(text[j] as string)) j++;
  return j;
}
