/**
 * What a page address names. Names, tags and digests use the OCI grammar, whose characters never
 * need percent-encoding, so an address with `%` names nothing (as the API's repoName decides):
 *
 *   /ui/                     repositories
 *   /ui/<name>               a repository's tags
 *   /ui/<name>:<tag>         an image
 *   /ui/<name>@<digest>      the files in one layer
 *   /ui/_/...                the script, the stylesheet and the sign-in fallback (`_` starts no name)
 */
import { parseDigest, type Digest } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import { isValidName } from "../../core/oci/reference.ts";

export type PageTarget =
  | { kind: "repositories" }
  | { kind: "repository"; name: string }
  | { kind: "image"; name: string; tag: string }
  | { kind: "blob"; name: string; digest: Digest }
  | { kind: "none" };

/** Semantic tags are longer than plain ones (`<tag>--<label>`), but no longer than a URL allows. */
const TAG_PART_MAX = 1024;
const TAG_PART_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

export function pageTarget(pathname: string): PageTarget {
  const rest = pathname.replace(/^\/ui\/?/, "").replace(/\/$/, "");
  if (rest === "") return { kind: "repositories" };
  if (rest.includes("%")) return { kind: "none" };
  const at = rest.indexOf("@");
  if (at >= 0) {
    const name = rest.slice(0, at);
    try {
      return isValidName(name) ? { kind: "blob", name, digest: parseDigest(rest.slice(at + 1)) } : { kind: "none" };
    } catch (e) {
      if (e instanceof RegistryError) return { kind: "none" };
      throw e;
    }
  }
  const colon = rest.indexOf(":");
  const name = colon >= 0 ? rest.slice(0, colon) : rest;
  if (!isValidName(name)) return { kind: "none" };
  if (colon < 0) return { kind: "repository", name };
  const tag = rest.slice(colon + 1);
  if (tag.length > TAG_PART_MAX || !TAG_PART_RE.test(tag)) return { kind: "none" };
  return { kind: "image", name, tag };
}
