/**
 * JSON documents read the way the clients that pull them read them. Go's encoding/json (docker,
 * containerd, skopeo) refuses a byte-order mark and nesting deeper than 10,000 levels: a manifest
 * that it cannot parse is refused at push, rather than stored and then failing every client (and
 * any code here that recurses over it) later.
 */

/** Go's encoding/json limit; real manifests nest about five levels. */
export const JSON_MAX_DEPTH = 10_000;

export class JsonTextError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JsonTextError";
  }
}

// ignoreBOM keeps a byte-order mark in the text instead of dropping it silently, so that the
// text is exactly the bytes (spliced output keeps them) and JSON.parse refuses it.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The text of a JSON document, byte for byte; throws JsonTextError when it is not UTF-8. */
export function decodeJsonText(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new JsonTextError("is not valid UTF-8");
  }
}

const BOM = "\uFEFF";

/**
 * Parses a UTF-8 JSON document. Strict (the default), it also refuses what Go's encoding/json
 * refuses: a byte-order mark and nesting deeper than JSON_MAX_DEPTH. Lenient, for documents
 * accepted under older rules, it drops a byte-order mark and measures no depth. Error messages
 * read after the document's name ("manifest is ...").
 */
export function parseJsonDocument(bytes: Uint8Array, { strict = true }: { strict?: boolean } = {}): unknown {
  let text = decodeJsonText(bytes);
  if (text.startsWith(BOM)) {
    if (strict) throw new JsonTextError("starts with a UTF-8 byte-order mark, which JSON does not allow");
    text = text.slice(BOM.length);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new JsonTextError(`is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (strict && nestingDepth(text, JSON_MAX_DEPTH) > JSON_MAX_DEPTH) {
    throw new JsonTextError(`nests arrays and objects deeper than ${JSON_MAX_DEPTH} levels`);
  }
  return json;
}

/**
 * How deep arrays and objects nest in JSON text that JSON.parse accepted, counted without
 * recursion (so any depth is safe to measure); stops counting once it passes `stop`.
 */
export function nestingDepth(text: string, stop = Infinity): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      // Step over the string whole: brackets inside it do not count.
      for (i++; text[i] !== '"'; i++) if (text[i] === "\\") i++;
    } else if (c === "{" || c === "[") {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > stop) return deepest;
      }
    } else if (c === "}" || c === "]") {
      depth--;
    }
  }
  return deepest;
}

/** A document someone else wrote (a signature, a key file) read strictly, or undefined when it is not JSON. */
export function tryParseJson(bytes: Uint8Array): unknown {
  try {
    return parseJsonDocument(bytes);
  } catch (e) {
    if (e instanceof JsonTextError) return undefined;
    throw e;
  }
}
