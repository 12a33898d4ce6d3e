/**
 * When each stored image was last built, pushed or exported: one empty file per image, whose
 * mtime is the time, beside the layouts and never inside them (an OCI layout holds only what the
 * spec names, and its index.json is rewritten by builds, which must not race with a push that
 * only wants to note the time):
 *
 *   <images>/.last-used/<registry>/<repository>/<tag>
 */
import { mkdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { removeEmptyDirs } from "./atomic.ts";
import type { StoredRef } from "./images.ts";

export const USAGE_DIR = ".last-used";

function usageFile(stored: Pick<StoredRef, "root" | "dir" | "tag">): string {
  return path.join(stored.root, USAGE_DIR, path.relative(stored.root, stored.dir), stored.tag);
}

/** Notes that the image was used now; a store that cannot take the note loses only the date. */
export async function touchImage(stored: Pick<StoredRef, "root" | "dir" | "tag">): Promise<void> {
  const file = usageFile(stored);
  const now = new Date();
  try {
    await utimes(file, now, now);
  } catch {
    await mkdir(path.dirname(file), { recursive: true }).catch(() => {});
    await writeFile(file, "").catch(() => {});
  }
}

/** When the image was last used, if that was noted. */
export async function lastUsed(stored: Pick<StoredRef, "root" | "dir" | "tag">): Promise<Date | undefined> {
  try {
    return (await stat(usageFile(stored))).mtime;
  } catch {
    return undefined;
  }
}

export async function forgetUsage(stored: Pick<StoredRef, "root" | "dir" | "tag">): Promise<void> {
  const file = usageFile(stored);
  await rm(file, { force: true });
  // Folders of repositories with no image left go too.
  await removeEmptyDirs(path.dirname(file), path.join(stored.root, USAGE_DIR));
}
