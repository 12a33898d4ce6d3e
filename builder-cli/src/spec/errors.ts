/**
 * Errors the user can fix by changing what they typed or wrote: a bad 2dfs.json, an unknown
 * option value, a malformed reference. The CLI maps them to exit code 2; anything else is a
 * failure (exit code 1).
 */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InputError";
  }
}
