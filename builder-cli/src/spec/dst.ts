/**
 * Destinations inside the image. A dst is always taken relative to the image root (a leading "/"
 * changes nothing) and may not climb out of it: "a/../../etc" is refused rather than clamped,
 * because silently writing somewhere else than asked hides a mistake.
 */

/** Returns the path relative to the root ("" for the root itself), or undefined if it escapes. */
export function normalizeDst(dst: string): string | undefined {
  const parts: string[] = [];
  for (const seg of dst.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (parts.length === 0) return undefined;
      parts.pop();
    } else {
      parts.push(seg);
    }
  }
  return parts.join("/");
}

/** Joins a normalized directory and a relative child path. */
export function joinDst(dir: string, child: string): string {
  return dir === "" ? child : child === "" ? dir : `${dir}/${child}`;
}
