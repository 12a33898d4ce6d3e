/**
 * A repository's tags, newest first. The Store lists tags in lexical order only; the time a tag
 * was last written is its R2 object's upload time, so this lists the tag objects themselves,
 * read-only, under the key the Store defines (a `ManifestStore` listing with dates would be the
 * better home once the storage rewrite settles).
 */
import { keys } from "../storage/keys.ts";

export interface TagEntry {
  tag: string;
  uploaded: Date;
}

/** At most this many tags are sorted; a repository with more shows the newest of the first ones listed. */
const TAGS_MAX = 5000;

export async function tagsNewestFirst(
  bucket: Pick<R2Bucket, "list">,
  repo: string,
): Promise<{ tags: TagEntry[]; complete: boolean }> {
  const prefix = keys.tagsPrefix(repo);
  const tags: TagEntry[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix, ...(cursor ? { cursor } : {}) });
    for (const o of page.objects) tags.push({ tag: o.key.slice(prefix.length), uploaded: o.uploaded });
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor && tags.length < TAGS_MAX);
  tags.sort((a, b) => b.uploaded.getTime() - a.uploaded.getTime() || (a.tag < b.tag ? -1 : 1));
  return { tags, complete: cursor === undefined };
}
