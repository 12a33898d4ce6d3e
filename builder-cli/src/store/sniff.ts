/** The layer media type a stored blob's own bytes call for (DESIGN: served as its bytes are). */
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
