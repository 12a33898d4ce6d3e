/**
 * The byte ranges of blob GETs (`Range`) and of chunked upload PATCHes (`Content-Range`). Pure and
 * free of Workers types, so that the unit tests can check them against every input
 * (test/unit/properties-ranges.test.ts).
 */
import { RegistryError } from "../core/oci/errors.ts";

/** A decimal position that arithmetic on it keeps exact; longer digit strings lose their low digits. */
function position(digits: string | undefined): number | undefined {
  const n = digits === undefined ? NaN : Number(digits);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A single `bytes=` range, resolved against the blob's size (RFC 9110 §14.1.2). */
export function parseRange(header: string | undefined, size: number): { offset: number; length: number } | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined; // not a single byte range: serve the whole blob
  const unsatisfiable = () =>
    // A bounded prefix: the digits of a range can run to kilobytes.
    new RegistryError(
      "RANGE_INVALID",
      undefined,
      { range: header.slice(0, 200), size },
      { "Content-Range": `bytes */${size}` },
    );
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) throw unsatisfiable();
    const length = Math.min(suffix, size);
    return { offset: size - length, length };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) throw unsatisfiable();
  return { offset: start, length: end - start + 1 };
}

/**
 * The `start-end` of a PATCH's Content-Range, as docker and containerd send it (`0-999`), or in
 * the RFC's form (`bytes 0-999/5000`, `bytes 0-999/*`). Whether it continues the session is the
 * route's question; here a range whose positions no number holds exactly, or whose complete length
 * does not exceed its last byte (RFC 9110 §14.4), is malformed.
 */
export function parseContentRange(header: string): { start: number; end: number } {
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(\d+|\*))?$/.exec(header.trim());
  const start = position(m?.[1]);
  const end = position(m?.[2]);
  // The complete length is only compared with `end`: rounded, a length past 2^53 still exceeds it.
  const total = m?.[3] === undefined || m[3] === "*" ? Infinity : Number(m[3]);
  if (start === undefined || end === undefined || total <= end) {
    throw new RegistryError("BLOB_UPLOAD_INVALID", "malformed Content-Range", { contentRange: header.slice(0, 200) });
  }
  return { start, end };
}
