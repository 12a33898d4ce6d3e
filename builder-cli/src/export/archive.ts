/**
 * An OCI layout packed into one tar ("oci-archive", what `skopeo copy oci-archive:` and
 * `ctr image import` read). Blobs are streamed from disk into the tar, never held in memory.
 */
import { createWriteStream } from "node:fs";
import { readdir, rename, rm, stat } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { addEntry, addFileEntry, NEUTRAL_OWNER, packStream } from "../build/tar.ts";
import { tempPathFor } from "../store/atomic.ts";

export async function writeLayoutArchive(layoutDir: string, dest: string): Promise<void> {
  const blobs = (await readdir(path.join(layoutDir, "blobs", "sha256"))).filter((n) => !n.includes(".tmp-")).sort();
  const files = ["oci-layout", "index.json", ...blobs.map((b) => `blobs/sha256/${b}`)];
  const tar = packStream(async (pack) => {
    for (const dir of ["blobs", "blobs/sha256"])
      await addEntry(pack, { ...NEUTRAL_OWNER, name: dir, type: "directory", mode: 0o755 });
    for (const name of files) {
      const file = path.join(layoutDir, name);
      const { size } = await stat(file);
      await addFileEntry(pack, { ...NEUTRAL_OWNER, name, type: "file", mode: 0o644, size }, file);
    }
  });
  const tmp = tempPathFor(dest);
  try {
    await pipeline(tar, createWriteStream(tmp));
    await rename(tmp, dest);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
