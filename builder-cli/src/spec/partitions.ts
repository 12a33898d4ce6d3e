/**
 * Named partitions from 2dfs.json: `{"partitions": {"name": "x1.y1.x2.y2[--...]"}}`. Each is
 * checked now, with the same parser the registry will use to resolve `<tag>--<name>`, so a typo
 * fails the build instead of every later pull: the name must be one a semantic tag can spell and
 * not the reserved `all`, every rectangle must lie in the field, and the partition must select
 * at least one allotment. Values are stored in canonical form.
 */
import { isValidTag } from "../../../core/oci/reference.ts";
import {
  ALL_PARTITION,
  canonicalLabel,
  LabelError,
  namedPartitions,
  NAMED_PARTITION_PREFIX,
  parseLabel,
  selects,
} from "../../../core/tdfs/label.ts";
import { InputError } from "./errors.ts";

/** Where the allotments are, for checking what a partition selects. */
interface Cell {
  row: number;
  col: number;
}

/** OCI tags are at most 128 characters (core/oci/reference.ts checks the whole grammar). */
const TAG_LIMIT = "at most 128 characters";

export function parsePartitions(
  raw: Record<string, string>,
  file: string,
  allotments: readonly Cell[],
): Record<string, string> {
  const out: Record<string, string> = {};
  const maxRow = Math.max(-1, ...allotments.map((a) => a.row));
  const maxCol = Math.max(-1, ...allotments.map((a) => a.col));
  for (const [name, value] of Object.entries(raw)) {
    const where = `${file}: partitions.${name}`;
    // namedPartitions drops any name a semantic tag could never spell.
    if (!(name in namedPartitions({ [NAMED_PARTITION_PREFIX + name]: value }))) {
      throw new InputError(
        `${where}: a name starts with a letter, then letters, digits, "_", "." or "-", and has no "--"`,
      );
    }
    if (name === ALL_PARTITION) {
      throw new InputError(
        `${where}: "${ALL_PARTITION}" is reserved: <tag>--all pulls the whole field; pick another name`,
      );
    }
    // Even after the shortest tag, `x--<name>`, it must still be a tag the registry accepts.
    if (!isValidTag(`x--${name}`)) {
      throw new InputError(`${where}: the name is ${name.length} characters; <tag>--<name> is a tag, ${TAG_LIMIT}`);
    }
    let rects;
    let canonical;
    try {
      rects = parseLabel(value);
      canonical = canonicalLabel(rects);
    } catch (e) {
      if (e instanceof LabelError) throw new InputError(`${where}: ${e.reason}`);
      throw e;
    }
    for (const r of rects) {
      if (r.x1 > maxRow || r.y1 > maxCol) {
        throw new InputError(
          `${where}: rectangle ${r.x1}.${r.y1}.${r.x2}.${r.y2} lies outside the field ` +
            `(rows 0-${maxRow}, columns 0-${maxCol})`,
        );
      }
    }
    if (!allotments.some((a) => selects(rects, a.row, a.col))) {
      throw new InputError(`${where}: "${value}" selects no allotment (every cell it covers is empty)`);
    }
    out[name] = canonical;
  }
  return out;
}

/** Refuses a partition whose semantic tag `<tag>--<name>` the registry could not accept as a tag. */
export function checkPartitionTags(partitions: Record<string, string>, tag: string, file: string): void {
  for (const name of Object.keys(partitions)) {
    const semantic = `${tag}--${name}`;
    if (!isValidTag(semantic)) {
      throw new InputError(
        `${file}: partitions.${name}: "${semantic}" is ${semantic.length} characters, and a tag is ${TAG_LIMIT}; ` +
          "shorten the name or the tag",
      );
    }
  }
}
