/**
 * Named partitions from 2dfs.json: `{"partitions": {"name": "x1.y1.x2.y2[--...]"}}`. Each is
 * checked now, with the same parser the registry will use to resolve `<tag>--<name>`, so a typo
 * fails the build instead of every later pull. Values are stored in canonical form.
 */
import {
  canonicalSelection,
  LabelError,
  namedPartitions,
  NAMED_PARTITION_PREFIX,
  parseLabel,
} from "../../../core/tdfs/label.ts";
import { InputError } from "./errors.ts";

export function parsePartitions(raw: Record<string, string>, file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    // namedPartitions drops any name a semantic tag could never spell.
    if (!(name in namedPartitions({ [NAMED_PARTITION_PREFIX + name]: value }))) {
      throw new InputError(
        `${file}: partitions.${name}: a name starts with a letter, then letters, digits, "_", "." or "-", and has no "--"`,
      );
    }
    try {
      out[name] = canonicalSelection(parseLabel(value));
    } catch (e) {
      if (e instanceof LabelError) throw new InputError(`${file}: partitions.${name}: ${e.reason}`);
      throw e;
    }
  }
  return out;
}
