/**
 * The partition function: from a stored 2DFS image and a selection, the ordinary OCI image a
 * stock runtime can pull (docs/format.md §5). Pure and deterministic:
 * the same inputs give the same bytes, hence the same digests, so the Worker can cache results
 * by (stored digest, canonical selection). All I/O and caching stay with the caller.
 *
 * What the reference registry got wrong and this gets right (docs/format.md §6): overlapping rectangles
 * never add an allotment twice, the config is extended in place (unknown fields, escapes and
 * number spellings survive), and each index entry keeps its platform and annotations.
 */
import { sha256, type Digest } from "../oci/digest.ts";
import { RegistryError } from "../oci/errors.ts";
import { decodeJsonText, JsonTextError } from "../oci/json.ts";
import type { Descriptor, ImageManifest } from "../oci/manifest.ts";
import { MediaType } from "../oci/media-types.ts";
import type { Allotment, Field } from "./field.ts";
import { applyEdits, arrayAppendPoint, arrayElements, objectMembers, rootSpan, type Span } from "./json-splice.ts";
import { selectAllotments, type Rect } from "./label.ts";

/** What a partition needs to know about an allotment blob, recorded when the image is pushed. */
export interface AllotmentFacts {
  size: number;
  /** The layer media type that matches the blob's bytes (gzip, zstd or plain tar). */
  mediaType: string;
}

/** Facts keyed by the allotment's blob digest, `sha256:<hex>`. */
export type AllotmentFactsLookup = ReadonlyMap<string, AllotmentFacts> | Readonly<Record<string, AllotmentFacts>>;

/** Bytes the caller stores content-addressed. */
export interface Content {
  bytes: Uint8Array;
  digest: Digest;
  size: number;
}

export interface ManifestPartitionInput {
  /** The stored child manifest, parsed (for its layers)... */
  manifest: ImageManifest;
  /** ...and as stored (the output keeps every field and its key order). */
  manifestBytes: Uint8Array;
  configBytes: Uint8Array;
  field: Field;
  facts: AllotmentFactsLookup;
  selection: readonly Rect[];
  /**
   * When nothing is selected, build the base image alone instead of signalling. For an index
   * whose other platforms do select allotments.
   */
  allowEmpty?: boolean;
}

export type ManifestPartition =
  { kind: "partition"; manifest: Content; config: Content; allotments: Allotment[] } | { kind: "nothing-selected" };

/**
 * The field layer of a manifest, or undefined for an ordinary image. A field layer anywhere but
 * last, or more than one, is a malformed 2DFS image.
 */
export function findFieldLayer(manifest: Pick<ImageManifest, "layers">): Descriptor | undefined {
  const positions = manifest.layers.flatMap((l, i) => (l.mediaType === MediaType.TdfsField ? [i] : []));
  if (positions.length === 0) return undefined;
  const last = manifest.layers.length - 1;
  if (positions.length > 1 || positions[0] !== last) {
    throw new RegistryError("MANIFEST_INVALID", "the 2dfs field must be the one and last layer", {
      fieldLayers: positions,
      layers: manifest.layers.length,
    });
  }
  return manifest.layers[last];
}

/**
 * Checks a 2DFS manifest against its config: the config lists a diff_id for every layer but
 * the field (layers = diff_ids + 1). Returns the parsed config.
 */
export function checkFieldConfig(
  manifest: Pick<ImageManifest, "layers">,
  configBytes: Uint8Array,
): Record<string, unknown> {
  const config = readJsonObject(decode(configBytes, "image config"), "image config");
  const diffIds = diffIdsOf(config);
  if (diffIds.length !== manifest.layers.length - 1) {
    throw new RegistryError("MANIFEST_INVALID", "a 2dfs image config needs a diff_id for every layer but the field", {
      layers: manifest.layers.length,
      diffIds: diffIds.length,
    });
  }
  return config;
}

/** Partitions one platform manifest that carries a field. */
export async function partitionManifest(input: ManifestPartitionInput): Promise<ManifestPartition> {
  const { manifest, field } = input;
  if (!findFieldLayer(manifest)) {
    throw new RegistryError("MANIFEST_INVALID", "manifest has no 2dfs field layer to partition");
  }
  const allotments = selectAllotments(field, input.selection);
  if (allotments.length === 0 && !input.allowEmpty) return { kind: "nothing-selected" };

  checkFieldConfig(manifest, input.configBytes);
  const layers = allotments.map((a) => JSON.stringify(allotmentDescriptor(a, input.facts)));
  const config = await content(extendConfig(decode(input.configBytes, "image config"), allotments));
  const text = storedText(input.manifestBytes, "manifest");
  return { kind: "partition", manifest: await content(rewriteManifest(text, config, layers)), config, allotments };
}

/**
 * The partitioned index: the stored index with each rewritten child's digest and size replaced.
 * Every other entry and field (platform, annotations, artifactType...) is kept as it was.
 */
export async function partitionIndex(
  indexBytes: Uint8Array,
  rewritten: ReadonlyMap<string, { digest: Digest; size: number }>,
): Promise<Content> {
  const text = storedText(indexBytes, "index");
  const manifests = memberOf(text, rootSpan(text), "manifests", "[");
  const edits = arrayElements(text, manifests).flatMap((entry) => {
    const digest = objectMembers(text, entry).get("digest");
    const child = digest && rewritten.get(JSON.parse(text.slice(digest.start, digest.end)) as string);
    return child ? descriptorEdits(text, entry, child) : [];
  });
  return content(applyEdits(text, edits));
}

type Edit = { at: number; remove?: number; insert: string };

/**
 * The stored manifest with its config descriptor pointing at the partitioned config and its
 * field layer (the last) replaced by the allotments' descriptors, edited in place in the text:
 * key order, spacing and every other value stay as they were, at any depth.
 */
function rewriteManifest(text: string, config: Content, layers: readonly string[]): string {
  const root = rootSpan(text);
  const configEdits = descriptorEdits(text, memberOf(text, root, "config", "{"), config);
  const elements = arrayElements(text, memberOf(text, root, "layers", "["));
  const field = elements.at(-1);
  if (!field) throw new RegistryError("MANIFEST_INVALID", "manifest has no 2dfs field layer to partition");
  const previous = elements.at(-2);
  let fieldEdit: Edit;
  if (layers.length > 0) {
    fieldEdit = { at: field.start, remove: field.end - field.start, insert: layers.join(",") };
  } else {
    // Nothing selected: the field goes, with the comma before it.
    const from = previous ? previous.end : field.start;
    fieldEdit = { at: from, remove: field.end - from, insert: "" };
  }
  return applyEdits(text, [...configEdits, fieldEdit]);
}

/** Edits that give the descriptor object at `span` another digest and size. */
function descriptorEdits(text: string, span: Span, to: { digest: Digest; size: number }): Edit[] {
  const members = objectMembers(text, span);
  const digest = members.get("digest");
  const size = members.get("size");
  if (!digest || !size) throw new RegistryError("MANIFEST_INVALID", "a descriptor lacks its digest or size");
  return [
    { at: digest.start, remove: digest.end - digest.start, insert: JSON.stringify(to.digest) },
    { at: size.start, remove: size.end - size.start, insert: String(to.size) },
  ];
}

/** The span of member `key` of the object at `span`, which must hold an object ("{") or array ("["). */
function memberOf(text: string, span: Span, key: string, opens: "{" | "["): Span {
  const member = objectMembers(text, span).get(key);
  if (!member || text[member.start] !== opens) {
    throw new RegistryError("MANIFEST_INVALID", `${key} is not ${opens === "{" ? "an object" : "an array"}`);
  }
  return member;
}

function allotmentDescriptor(
  a: Allotment,
  lookup: AllotmentFactsLookup,
): { mediaType: string; digest: string; size: number } {
  const digest = `sha256:${a.digest}`;
  const facts = factsFor(lookup, digest);
  if (!facts) {
    throw new RegistryError("MANIFEST_BLOB_UNKNOWN", `allotment (${a.row},${a.col}) is unknown to the repository`, {
      cell: { row: a.row, col: a.col },
      digest,
    });
  }
  return { mediaType: facts.mediaType, digest, size: facts.size };
}

function factsFor(lookup: AllotmentFactsLookup, digest: string): AllotmentFacts | undefined {
  if (lookup instanceof Map) return (lookup as ReadonlyMap<string, AllotmentFacts>).get(digest);
  const record = lookup as Readonly<Record<string, AllotmentFacts>>;
  return Object.hasOwn(record, digest) ? record[digest] : undefined;
}

/**
 * The config with one diff_id and one history entry per allotment appended, and nothing else
 * changed. `history` is extended only where the image has one: a history made of allotment
 * entries alone would not line up with the base layers.
 */
function extendConfig(text: string, allotments: readonly Allotment[]): string {
  if (allotments.length === 0) return text;
  const root = objectMembers(text, rootSpan(text));
  const rootfs = root.get("rootfs");
  if (!rootfs) throw new RegistryError("MANIFEST_INVALID", "image config has no rootfs object");
  const diffIds = objectMembers(text, rootfs).get("diff_ids");
  const ids = allotments.map((a) => JSON.stringify(`sha256:${a.diffid}`));
  const edits: Edit[] = [];
  if (!diffIds) {
    // No diff_ids key at all (valid for a config with no base layers): add it at the end of rootfs.
    const close = rootfs.end - 1;
    const empty = Object.keys(JSON.parse(text.slice(rootfs.start, rootfs.end)) as object).length === 0;
    edits.push({ at: close, insert: `${empty ? "" : ","}"diff_ids":[${ids.join(",")}]` });
  } else if (text.slice(diffIds.start, diffIds.end) === "null") {
    edits.push({ at: diffIds.start, remove: diffIds.end - diffIds.start, insert: `[${ids.join(",")}]` });
  } else {
    edits.push(arrayAppendPoint(text, diffIds, ids));
  }
  const history = root.get("history");
  if (history && text[history.start] === "[") {
    edits.push(arrayAppendPoint(text, history, allotments.map(historyEntry)));
  }
  return applyEdits(text, edits);
}

/** A history line that names the cell; fixed text, no timestamp, so the config stays deterministic. */
function historyEntry(a: Allotment): string {
  return JSON.stringify({ created_by: `2dfs allotment (${a.row},${a.col})`, comment: `sha256:${a.digest}` });
}

function diffIdsOf(config: Record<string, unknown>): unknown[] {
  const rootfs = config.rootfs;
  if (typeof rootfs !== "object" || rootfs === null || Array.isArray(rootfs)) {
    throw new RegistryError("MANIFEST_INVALID", "image config has no rootfs object");
  }
  const ids = (rootfs as Record<string, unknown>).diff_ids;
  if (ids === undefined || ids === null) return [];
  if (!Array.isArray(ids)) throw new RegistryError("MANIFEST_INVALID", "image config rootfs.diff_ids is not an array");
  return ids;
}

/**
 * The text of a stored manifest or index, checked to be a JSON object, for the splicing scanner.
 * One pushed before byte-order marks were refused may start with one: the partition is written
 * without it, so that Go clients can read it.
 */
function storedText(bytes: Uint8Array, what: string): string {
  const text = decode(bytes, what).replace(/^\uFEFF/, "");
  readJsonObject(text, what);
  return text;
}

function readJsonObject(text: string, what: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new RegistryError("MANIFEST_INVALID", `${what} is not valid JSON`, { reason: String(e) });
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new RegistryError("MANIFEST_INVALID", `${what} is not a JSON object`);
  }
  return json as Record<string, unknown>;
}

/** Bytes as text, a byte-order mark kept: JSON.parse then refuses it as Go does, and splices keep every byte. */
function decode(bytes: Uint8Array, what: string): string {
  try {
    return decodeJsonText(bytes);
  } catch (e) {
    if (e instanceof JsonTextError) throw new RegistryError("MANIFEST_INVALID", `${what} ${e.message}`);
    throw e;
  }
}

async function content(text: string): Promise<Content> {
  const bytes = new TextEncoder().encode(text);
  return { bytes, digest: await sha256(bytes), size: bytes.length };
}
