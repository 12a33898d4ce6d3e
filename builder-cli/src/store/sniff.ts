/**
 * The layer media type a stored blob's own bytes call for: a registry serves an allotment under the
 * type its bytes have (docs/format.md §3), so the CLI names it the same way.
 */
import { open } from "node:fs/promises";
import { layerMediaTypeFor, sniffCompression } from "../../../core/oci/media-types.ts";

export async function layerMediaTypeOfFile(file: string): Promise<string> {
  const fh = await open(file, "r");
  try {
    const head = new Uint8Array(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    return layerMediaTypeFor(sniffCompression(head.subarray(0, bytesRead)));
  } finally {
    await fh.close();
  }
}
