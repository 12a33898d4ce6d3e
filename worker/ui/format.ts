/** Numbers and names as the pages print them; shared by the server-rendered pages and the client script. */

import { formatBytes as formatSize } from "../../core/format.ts";

export { shortDigest } from "../../core/format.ts";

/** Sizes on the pages: binary units, since allotments are usually powers of two (`64.0 KiB`). */
export function formatBytes(n: number): string {
  return formatSize(n, "binary");
}

/** How a layer's bytes are stored, from its media type: what the grid prints in each cell. */
export function compressionOf(mediaType: string): "gzip" | "zstd" | "tar" {
  if (mediaType.endsWith("+gzip") || mediaType.endsWith(".gzip")) return "gzip";
  if (mediaType.endsWith("+zstd") || mediaType.endsWith(".zstd")) return "zstd";
  return "tar";
}
