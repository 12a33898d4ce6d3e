/** @jsxRuntime automatic */
/** @jsxImportSource hono/jsx */
/** `/ui/`: the repositories the visitor may pull, with a filter box (the client filters as you type). */
import type { FC } from "hono/jsx";

export const Repositories: FC<{ repositories: string[]; query: string; next?: string }> = ({
  repositories,
  query,
  next,
}) => (
  <>
    <h1>Repositories</h1>
    <form method="get" class="filter" role="search">
      <input
        type="search"
        name="q"
        id="repo-filter"
        value={query}
        placeholder="Filter repositories"
        aria-label="Filter repositories"
      />
      <button type="submit">Filter</button>
    </form>
    {repositories.length === 0 ? (
      <p class="empty">{query ? "No repository matches." : "No repository you may pull is here yet."}</p>
    ) : (
      <ul class="repos" id="repos">
        {repositories.map((r) => (
          <li data-repo={r}>
            <a href={`/ui/${r}`}>{r}</a>
          </li>
        ))}
      </ul>
    )}
    {next ? (
      <p>
        <a href={next} rel="next">
          More repositories
        </a>
      </p>
    ) : null}
  </>
);
