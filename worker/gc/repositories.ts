/**
 * Finds every repository that has anything stored, by walking `repos/` one path segment at a time.
 * The catalog is not used: a repository's first link is written before its catalog marker, and a
 * collection that missed that link could delete a blob a push is still linking.
 */
import { keys } from "../storage/keys.ts";
import type { GcBucket } from "./bucket.ts";

/** Every repository name, in lexical order. */
export async function listRepositories(bucket: GcBucket): Promise<string[]> {
  const names: string[] = [];
  // A name's components start with [a-z0-9]; a `_` segment is a repository's own data, so the
  // prefix above it is a repository, and any other segment is one more component of a longer name.
  const walk = async (prefix: string): Promise<void> => {
    let isRepo = false;
    const deeper: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await bucket.list({ prefix, delimiter: "/", ...(cursor ? { cursor } : {}) });
      for (const p of page.delimitedPrefixes) {
        if (p.slice(prefix.length).startsWith("_")) isRepo = true;
        else deeper.push(p);
      }
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    if (isRepo) names.push(prefix.slice(keys.reposPrefix.length, -1));
    for (const p of deeper) await walk(p);
  };
  await walk(keys.reposPrefix);
  return names.sort();
}
