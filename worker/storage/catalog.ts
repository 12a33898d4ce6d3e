/** The repository catalog: one marker object per repository, written on its first push. */
import type { Bucket } from "./bucket.ts";
import { keys } from "./keys.ts";
import { listNames } from "./manifests.ts";

export class Catalog {
  private readonly bucket: Bucket;
  constructor(bucket: Bucket) {
    this.bucket = bucket;
  }

  async exists(repo: string): Promise<boolean> {
    return (await this.bucket.head(keys.catalog(repo))) !== null;
  }

  /**
   * Marks the repository as existing; a HEAD first keeps repeated pushes from rewriting the marker.
   * Best effort: the marker only lists the repository, and a push that stored what it was asked to
   * is not failed for it. A marker that did not land is written by the next push, or by the
   * collector, which finds repositories by their keys (gc/repositories.ts) and repairs it.
   */
  async touch(repo: string): Promise<void> {
    try {
      if (!(await this.exists(repo))) await this.bucket.put(keys.catalog(repo), null);
    } catch (e) {
      console.error(`catalog marker of ${repo} not written: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  async list(n: number, last?: string): Promise<{ repositories: string[]; more: boolean }> {
    const { tags, more } = await listNames(
      this.bucket,
      keys.catalogPrefix,
      n,
      last === undefined ? undefined : keys.catalog(last),
    );
    return { repositories: tags, more };
  }
}
