/**
 * The oldest Node the CLI runs on: 22.15 brought zstd to node:zlib (allotments may be zstd).
 * package.json's `engines` says the same (a unit test keeps them equal). Kept free of imports and
 * of recent syntax: it runs before anything else, on whatever Node the user has.
 */
export const MIN_NODE: readonly [number, number] = [22, 15];

export function nodeTooOld(version: string): boolean {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  return major < MIN_NODE[0] || (major === MIN_NODE[0] && minor < MIN_NODE[1]);
}
