/**
 * Properties of the WWW-Authenticate reader that the CLI and the Worker's upstream client share
 * (core/oci/token-auth.ts): of a header listing several challenges (RFC 9110 §11.6.1), it reads
 * the first Basic or Bearer one, with that challenge's parameters only, however values are quoted.
 */
import fc from "fast-check";
import { describe, expect } from "vitest";
import { parseChallenge } from "../../core/oci/token-auth.ts";
import type { Generated } from "./properties-arbitraries.ts";
import { anyText, propertySuite, thrown } from "./properties-support.ts";

const { property } = propertySuite("properties-auth");

/** A value as a server writes it: quoted (with \" and \\ escaped), or bare when it is a token. */
const written = (value: string, quote: boolean): string =>
  quote || !/^[A-Za-z0-9._~+/:-]+$/.test(value) ? `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"` : value;

const paramValue = fc.oneof(
  fc.constantFrom("https://auth.example/token", "registry.example", "repository:a/b:pull,push", "insufficient_scope"),
  fc.string({ maxLength: 12 }),
);

/** One challenge: its scheme spelled in any case, and parameters with distinct names. */
const challenge = fc.record({
  scheme: fc.constantFrom("Basic", "Bearer", "Negotiate", "Digest", "BEARER", "basic"),
  params: fc.uniqueArray(
    fc.tuple(
      fc.constantFrom("realm", "service", "scope", "error", "charset", "Realm", "x-extra"),
      paramValue,
      fc.boolean(),
    ),
    { maxLength: 5, selector: ([name]) => name.toLowerCase() },
  ),
  spaces: fc.constantFrom("", " ", "  "),
});

function header(challenges: readonly Generated<typeof challenge>[]): string {
  return challenges
    .map(({ scheme, params, spaces }) => {
      const list = params.map(([name, value, quote]) => `${name}${spaces}=${spaces}${written(value, quote)}`);
      // A challenge without parameters is its scheme alone; Negotiate and co. may carry a token68.
      return list.length ? `${scheme} ${list.join(`,${spaces}`)}` : scheme === "Negotiate" ? `${scheme} abc==` : scheme;
    })
    .join(", ");
}

/** What RFC 9110 and the Docker token spec make of the first usable challenge. */
function expected(challenges: readonly Generated<typeof challenge>[]): ReturnType<typeof parseChallenge> {
  const first = challenges.find((c) => ["basic", "bearer"].includes(c.scheme.toLowerCase()));
  if (!first) return undefined;
  const params = Object.fromEntries(first.params.map(([name, value]) => [name.toLowerCase(), value]));
  if (first.scheme.toLowerCase() === "basic") {
    return params.realm !== undefined ? { scheme: "basic", realm: params.realm } : { scheme: "basic" };
  }
  if (!params.realm) return undefined;
  const out: Record<string, string> = { scheme: "bearer", realm: params.realm };
  for (const key of ["service", "scope", "error"]) if (params[key] !== undefined) out[key] = params[key];
  return out as ReturnType<typeof parseChallenge>;
}

describe("WWW-Authenticate", () => {
  property(
    "the first Basic or Bearer challenge is read with its own parameters, whatever comes before or after it",
    fc.property(fc.array(challenge, { minLength: 1, maxLength: 3 }), (challenges) => {
      expect(parseChallenge(header(challenges))).toEqual(expected(challenges));
    }),
    5_000,
  );

  property(
    "any header is read or ignored, never thrown on",
    fc.property(anyText(80), (text) => {
      expect(thrown(() => parseChallenge(text))).toBeUndefined();
    }),
    5_000,
  );
});
