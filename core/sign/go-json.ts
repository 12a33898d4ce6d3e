/**
 * JSON as Go's encoding/json writes it, for the payloads other tools sign and compare byte for
 * byte: object keys in the order given (Go writes struct fields in declaration order and map keys
 * sorted), and <, >, &, U+2028 and U+2029 escaped as \u003c, \u003e, \u0026, \u2028, \u2029.
 */
export function goJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** A map as Go marshals a map[string]string: keys sorted by their bytes. */
export function sortedMap(m: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(m).sort()) out[k] = m[k] as string;
  return out;
}
