/**
 * The file steps the store is made of: writes that never leave a half-written file under the
 * final name, even if interrupted, and removals that leave no empty folders behind.
 */
import { link, copyFile, mkdir, rename, rm, rmdir, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import path from "node:path";

/** A fresh name beside `file`, on the same file system so that rename is atomic. */
export function tempPathFor(file: string): string {
  return `${file}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
}

export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = tempPathFor(file);
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Puts the content-addressed file `from` at `to`: a hard link when both are on one file system
 * (free, and the content can never differ), else a copy. An existing `to` is kept: same name,
 * same bytes.
 */
export async function linkOrCopy(from: string, to: string): Promise<void> {
  await mkdir(path.dirname(to), { recursive: true });
  try {
    await link(from, to);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return;
    if (code !== "EXDEV" && code !== "EPERM" && code !== "EMLINK") throw e;
    const tmp = tempPathFor(to);
    await copyFile(from, tmp);
    await rename(tmp, to);
  }
}

/** Removes `dir` and then its parents while they are empty, up to (not including) `root`. */
export async function removeEmptyDirs(dir: string, root: string): Promise<void> {
  for (let d = dir; d.startsWith(root + path.sep); d = path.dirname(d)) {
    try {
      await rmdir(d);
    } catch {
      return;
    }
  }
}
