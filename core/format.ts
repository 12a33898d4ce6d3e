/**
 * Sizes and digests as people read them, in the CLI's output and on the web view's pages alike.
 */

const DECIMAL = ["B", "kB", "MB", "GB", "TB"];
const BINARY = ["B", "KiB", "MiB", "GiB", "TiB"];

/**
 * `999 B`, `12.3 MB`: decimal units by default, as docker prints sizes (the CLI); binary ones,
 * `64.0 KiB`, for the web view, where allotment sizes are usually powers of two.
 */
export function formatBytes(n: number, units: "decimal" | "binary" = "decimal"): string {
  const [step, names] = units === "binary" ? [1024, BINARY] : [1000, DECIMAL];
  let value = n;
  let unit = 0;
  while (value >= step && unit < names.length - 1) {
    value /= step;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${names[unit]}`;
}

/** `sha256:0123456789ab…`: twelve hex digits, enough to tell blobs and images apart at a glance. */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(":");
  return digest.length > colon + 13 ? `${digest.slice(0, colon + 13)}…` : digest;
}
