/**
 * Properties of the byte ranges the registry reads (worker/http-ranges.ts): `Range` on blob GETs
 * and `Content-Range` on upload PATCHes. The expected answers are computed here with BigInt
 * from RFC 9110's rules, so that no digit string is too long for the oracle.
 */
import fc from "fast-check";
import { describe, expect } from "vitest";
import { RegistryError } from "../../core/oci/errors.ts";
import { parseContentRange, parseRange } from "../../worker/http-ranges.ts";
import { anyText, expectOnly, mutated, propertySuite, thrown } from "./properties-support.ts";

const { property } = propertySuite("properties-ranges");

/** Blob sizes: empty, small (where ranges meet the ends), and up to what R2 can hold. */
const size = fc.oneof(fc.constant(0), fc.nat({ max: 2_000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
/** A position as a client spells it: near the blob's size, anywhere, with leading zeros or too long for a double. */
const digits = fc.oneof(
  fc.nat({ max: 2_100 }).map(String),
  fc.bigInt({ min: 0n, max: 2n ** 70n }).map(String),
  fc.tuple(fc.nat({ max: 3 }), fc.nat({ max: 2_100 })).map(([z, n]) => "0".repeat(z) + n),
  fc.stringMatching(/^[0-9]{15,40}$/),
  fc.nat({ max: 5_000 }).map((n) => "9".repeat(n + 1)),
);

/** What a 416 or 400 echoes stays small, however long the header was. */
const expectBoundedDetail = (e: RegistryError): void => {
  expect(JSON.stringify(e.toJSON()).length).toBeLessThan(1_000);
};

type Interval = { offset: number; length: number };

/** RFC 9110 §14.1.2 for one range-spec: the interval, "unsatisfiable", or "ignored" (serve it all). */
function expectedRange(header: string, blobSize: number): Interval | "unsatisfiable" | "ignored" {
  const m = /^bytes=([0-9]*)-([0-9]*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return "ignored";
  const n = BigInt(blobSize);
  let first: bigint;
  let last: bigint;
  if (m[1] === "") {
    const suffix = BigInt(m[2] as string);
    if (suffix === 0n || n === 0n) return "unsatisfiable";
    first = n - (suffix < n ? suffix : n);
    last = n - 1n;
  } else {
    first = BigInt(m[1] as string);
    last = m[2] === "" ? n - 1n : BigInt(m[2] as string);
    // An inverted range is invalid; this registry answers it as distribution does, with 416.
    if (last < first || first >= n) return "unsatisfiable";
    if (last >= n) last = n - 1n;
  }
  return { offset: Number(first), length: Number(last - first + 1n) };
}

function actualRange(header: string, blobSize: number): Interval | "unsatisfiable" | "ignored" {
  const e = thrown(() => parseRange(header, blobSize));
  expectOnly(e, RegistryError);
  if (e instanceof RegistryError) {
    expect(e.code).toBe("RANGE_INVALID");
    expect(e.status).toBe(416);
    expect(e.headers["Content-Range"]).toBe(`bytes */${blobSize}`);
    expectBoundedDetail(e);
    return "unsatisfiable";
  }
  const range = parseRange(header, blobSize);
  if (!range) return "ignored";
  // Never outside the blob, never empty, whatever the header said.
  expect(Number.isSafeInteger(range.offset) && Number.isSafeInteger(range.length)).toBe(true);
  expect(range.offset).toBeGreaterThanOrEqual(0);
  expect(range.length).toBeGreaterThanOrEqual(1);
  expect(range.offset + range.length).toBeLessThanOrEqual(blobSize);
  return range;
}

const validRange = fc.oneof(
  fc.tuple(digits, digits).map(([a, b]) => `bytes=${a}-${b}`),
  digits.map((a) => `bytes=${a}-`),
  digits.map((n) => `bytes=-${n}`),
);

describe("Range", () => {
  property(
    "bytes=a-b, bytes=a- and bytes=-n give the RFC's interval or 416, never one outside the blob",
    fc.property(validRange, size, (header, blobSize) => {
      expect(actualRange(header, blobSize)).toEqual(expectedRange(header, blobSize));
    }),
    10_000,
  );

  property(
    "any header gives the RFC's answer, and throws nothing but RANGE_INVALID",
    fc.property(
      fc.oneof(
        anyText(40),
        mutated(validRange, "0123456789-=,bytes \t"),
        fc.constantFrom("bytes=-", "bytes=0-0,5-9", "Bytes=0-1", "bytes =0-1", "bytes=1-0", "bytes=0--1"),
      ),
      size,
      (header, blobSize) => {
        expect(actualRange(header, blobSize)).toEqual(expectedRange(header, blobSize));
      },
    ),
    10_000,
  );
});

/** RFC 9110 §14.4 and the forms clients send: the start and end, or "malformed". */
function expectedContentRange(header: string): { start: number; end: number } | "malformed" {
  const m = /^(?:bytes[ =])?([0-9]+)-([0-9]+)(?:\/([0-9]+|\*))?$/.exec(header.trim());
  if (!m) return "malformed";
  const [start, end] = [BigInt(m[1] as string), BigInt(m[2] as string)];
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  // A complete length must exceed the last byte; positions past 2^53 are more than any upload holds.
  if (start > max || end > max) return "malformed";
  if (m[3] !== undefined && m[3] !== "*" && BigInt(m[3]) <= end) return "malformed";
  return { start: Number(start), end: Number(end) };
}

function actualContentRange(header: string): { start: number; end: number } | "malformed" {
  const e = thrown(() => parseContentRange(header));
  expectOnly(e, RegistryError);
  if (e instanceof RegistryError) {
    expect([e.code, e.status]).toEqual(["BLOB_UPLOAD_INVALID", 400]);
    expectBoundedDetail(e);
    return "malformed";
  }
  return parseContentRange(header);
}

const validContentRange = fc.oneof(
  fc.tuple(digits, digits).map(([a, b]) => `${a}-${b}`),
  fc
    .tuple(fc.constantFrom("bytes ", "bytes="), digits, digits, fc.oneof(digits, fc.constant("*")))
    .map(([unit, a, b, total]) => `${unit}${a}-${b}/${total}`),
);

describe("Content-Range", () => {
  property(
    "a-b, bytes a-b/total and bytes a-b/* give exactly a and b, or are malformed as the RFC says",
    fc.property(validContentRange, (header) => {
      expect(actualContentRange(header)).toEqual(expectedContentRange(header));
    }),
    10_000,
  );

  property(
    "any header gives the RFC's answer, and throws nothing but BLOB_UPLOAD_INVALID",
    fc.property(fc.oneof(anyText(40), mutated(validContentRange, "0123456789-/*= bytes")), (header) => {
      expect(actualContentRange(header)).toEqual(expectedContentRange(header));
    }),
    10_000,
  );
});
