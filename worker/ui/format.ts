/** Numbers and names as the pages print them; shared by the server-rendered pages and the client script. */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** `512 B`, `64.0 KiB`, `1.50 GiB`: three significant digits, binary units. */
export function formatBytes(n: number): string {
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${n} B`;
  return `${value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)} ${UNITS[unit]}`;
}

/** How a layer's bytes are stored, from its media type: what the grid prints in each cell. */
export function compressionOf(mediaType: string): "gzip" | "zstd" | "tar" {
  if (mediaType.endsWith("+gzip") || mediaType.endsWith(".gzip")) return "gzip";
  if (mediaType.endsWith("+zstd") || mediaType.endsWith(".zstd")) return "zstd";
  return "tar";
}

/** `sha256:0123456789ab`: enough of a digest to tell images apart at a glance. */
export function shortDigest(digest: string): string {
  return digest.slice(0, 19);
}
