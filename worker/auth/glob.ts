/**
 * Repository name patterns: `*` matches within one path component, `**` matches across
 * components (any characters, `/` included). Everything else matches itself. So `team-a/*`
 * covers `team-a/app` but not `team-a/app/dev` or `team-a`, and `public/**` covers every
 * repository below `public/`.
 */

/** Characters a pattern may hold: those of repository names, plus `*`. */
export const PATTERN_RE = /^[a-z0-9._\-/*]+$/;

export function compileRepoPattern(pattern: string): RegExp {
  const source = pattern
    .split("**")
    .map((part) =>
      part
        .split("*")
        .map((literal) => literal.replace(/[.\\^$+?()[\]{}|-]/g, "\\$&"))
        .join("[^/]*"),
    )
    .join(".*");
  return new RegExp(`^${source}$`);
}
