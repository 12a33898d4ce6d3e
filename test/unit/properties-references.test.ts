/**
 * Properties of repository names, tags, references and digests (core/oci/reference.ts,
 * digest.ts) against the OCI distribution spec's grammar, written out here again from the spec
 * so that the code is checked against the spec and not against itself.
 */
import fc from "fast-check";
import { describe, expect } from "vitest";
import { parseDigest } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import {
  isValidName,
  isValidTag,
  NAME_MAX,
  parseReference,
  validateName,
  validateTag,
} from "../../core/oci/reference.ts";
import { hexOf } from "./properties-arbitraries.ts";
import { anyText, expectOnly, mutated, propertySuite, thrown } from "./properties-support.ts";

const { property } = propertySuite("properties-references");

// The distribution spec, "Pulling manifests": <name> and <reference> as tag.
const SPEC_NAME = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
const SPEC_TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
// The image spec's digest, restricted to the two registered algorithms this registry verifies.
const SPEC_DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** Names from the grammar, of every length up to well past the limit. */
const component = fc.stringMatching(/^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$/, { size: "small" });
const grammarName = fc.array(component, { minLength: 1, maxLength: 12 }).map((parts) => parts.join("/"));
/** Names from the grammar a few characters either side of the limit, repeating one separator. */
const longName = fc
  .tuple(fc.integer({ min: NAME_MAX - 3, max: NAME_MAX + 3 }), fc.constantFrom("/", ".", "-", "__", "0"))
  .map(([n, sep]) => `a${sep}`.repeat(n).slice(0, n - 1) + "a");
const nameAlphabet = "abz09./_-A:%\u0130 ";

const grammarTag = fc.stringMatching(SPEC_TAG);
const grammarDigest = fc.oneof(
  hexOf(32).map((h) => `sha256:${h}`),
  hexOf(64).map((h) => `sha512:${h}`),
);
const digestAlphabet = "0af9AF:sha256512+._-=g";

/** The code, which answers only with its error type, and the spec, as one verdict each. */
function verdict(f: () => unknown): "accepted" | RegistryError["code"] {
  const e = thrown(f);
  expectOnly(e, RegistryError);
  return e instanceof RegistryError ? e.code : "accepted";
}

describe("repository names", () => {
  property(
    "a name from the grammar is valid iff it is at most NAME_MAX characters",
    fc.property(fc.oneof(grammarName, longName), (name) => {
      expect(SPEC_NAME.test(name)).toBe(true);
      expect(isValidName(name)).toBe(name.length <= NAME_MAX);
      expect(verdict(() => validateName(name))).toBe(name.length <= NAME_MAX ? "accepted" : "NAME_INVALID");
    }),
    3_000,
  );

  property(
    "any string is a valid name iff the spec's grammar matches it and it is at most NAME_MAX characters",
    fc.property(fc.oneof(anyText(), mutated(grammarName, nameAlphabet), mutated(longName, nameAlphabet)), (name) => {
      const valid = SPEC_NAME.test(name) && name.length <= NAME_MAX;
      expect(isValidName(name)).toBe(valid);
      expect(verdict(() => validateName(name))).toBe(valid ? "accepted" : "NAME_INVALID");
      // Why the grammar matters: no valid name can reach an internal key (a segment starting "_" or ".").
      if (valid) expect(name.split("/").every((s) => /^[a-z0-9]/.test(s))).toBe(true);
    }),
    10_000,
  );
});

describe("tags, digests and references", () => {
  property(
    "a tag from the grammar is valid, and a reference to it is that tag",
    fc.property(grammarTag, (tag) => {
      expect(isValidTag(tag)).toBe(true);
      expect(validateTag(tag)).toBe(tag);
      expect(parseReference(tag)).toEqual({ kind: "tag", tag });
    }),
    3_000,
  );

  property(
    "a digest from the grammar is valid, and a reference to it is that digest",
    fc.property(grammarDigest, (digest) => {
      expect(parseDigest(digest)).toBe(digest);
      expect(parseReference(digest)).toEqual({ kind: "digest", digest });
    }),
    3_000,
  );

  property(
    "any string is a tag, a digest or refused with TAG_INVALID or DIGEST_INVALID, exactly as the spec says",
    fc.property(
      fc.oneof(
        anyText(140),
        mutated(grammarTag, "aZ09._-:+/ \u00e9"),
        mutated(grammarDigest, digestAlphabet),
        fc.stringMatching(/^[a-z0-9]+([+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{1,130}$/),
      ),
      (ref) => {
        const expected = SPEC_TAG.test(ref) ? "accepted" : ref.includes(":") ? "DIGEST_INVALID" : "TAG_INVALID";
        const asDigest = SPEC_DIGEST.test(ref);
        expect(verdict(() => parseReference(ref))).toBe(asDigest ? "accepted" : expected);
        expect(verdict(() => parseDigest(ref))).toBe(asDigest ? "accepted" : "DIGEST_INVALID");
        expect(isValidTag(ref)).toBe(SPEC_TAG.test(ref));
        if (asDigest) expect(parseReference(ref)).toEqual({ kind: "digest", digest: ref });
      },
    ),
    10_000,
  );

  property(
    "an error's detail echoes at most a bounded prefix of what was sent",
    fc.property(fc.string({ minLength: 200, maxLength: 5_000 }), (junk) => {
      for (const f of [() => validateName(junk), () => validateTag(junk), () => parseDigest(junk)]) {
        const e = thrown(f);
        expect(e).toBeInstanceOf(RegistryError);
        expect(JSON.stringify((e as RegistryError).toJSON()).length).toBeLessThan(1_200);
      }
    }),
    1_000,
  );
});
