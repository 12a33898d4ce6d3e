/** The catalog as one caller may see it: only repositories they may pull, still paged by `n`/`last`. */
import type { Catalog } from "../storage/catalog.ts";

export async function listVisible(
  catalog: Catalog,
  n: number,
  last: string | undefined,
  visible: (repo: string) => boolean,
): Promise<{ repositories: string[]; more: boolean }> {
  const repositories: string[] = [];
  let cursor = last;
  // Hidden names are skipped by reading further pages until `n` visible ones are found.
  for (;;) {
    const page = await catalog.list(Math.max(n, 1), cursor);
    for (const repo of page.repositories) {
      if (!visible(repo)) continue;
      // `more` is true only when another visible name exists, so the last Link never leads nowhere.
      if (repositories.length === n) return { repositories, more: true };
      repositories.push(repo);
    }
    cursor = page.repositories.at(-1);
    if (!page.more || cursor === undefined) return { repositories, more: false };
  }
}
