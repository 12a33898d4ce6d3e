/**
 * Repository names and tags, by the grammar of the OCI distribution spec. Validating here is what
 * keeps a crafted name (`..`, `%2f`, `_uploads`) from reaching another repository's keys or the
 * registry's own: every path component starts with [a-z0-9], so no name can produce a segment
 * beginning with `_`, which is where internal keys live.
 */
import { RegistryError } from "./errors.ts";
import { parseDigest, type Digest } from "./digest.ts";

const NAME_COMPONENT = "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*";
export const NAME_RE = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
/** The tag grammar, as error details state it. */
export const TAG_RULE = "[A-Za-z0-9_][A-Za-z0-9._-]{0,127}";
export const TAG_RE = new RegExp(`^${TAG_RULE}$`);
/** Names longer than this cannot be pulled by docker, so they are refused at push. */
export const NAME_MAX = 255;

export function isValidName(name: string): boolean {
  return name.length <= NAME_MAX && NAME_RE.test(name);
}

export function validateName(name: string): string {
  if (!isValidName(name)) {
    throw new RegistryError("NAME_INVALID", "invalid repository name", {
      name: name.slice(0, 300),
      rule: "lowercase components of [a-z0-9] joined by '.', '_', '__' or '-', separated by '/', at most 255 characters",
    });
  }
  return name;
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

export function validateTag(tag: string): string {
  if (!isValidTag(tag))
    throw new RegistryError("TAG_INVALID", "invalid tag", { tag: tag.slice(0, 200), rule: TAG_RULE });
  return tag;
}

/** A manifest reference is either a digest or a tag. */
export type Reference = { kind: "digest"; digest: Digest } | { kind: "tag"; tag: string };

export function parseReference(ref: string): Reference {
  // A digest of another algorithm or a malformed one is DIGEST_INVALID, as for blobs.
  if (ref.includes(":")) return { kind: "digest", digest: parseDigest(ref) };
  return { kind: "tag", tag: validateTag(ref) };
}
