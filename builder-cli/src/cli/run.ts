/**
 * Runs a command handler and turns its outcome into an exit code: 0 for success, 2 for input
 * the user must fix (bad 2dfs.json, option, reference or label), 1 for any other failure.
 */
import { KeyError } from "../../../core/sign/errors.ts";
import { LabelError } from "../../../core/tdfs/label.ts";
import { CredentialsError } from "../registry/credentials.ts";
import { ImageRefError } from "../registry/ref.ts";
import { InputError } from "../spec/errors.ts";

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export async function runCommand(handler: () => Promise<void>): Promise<void> {
  try {
    await handler();
    // A handler may have set a failure of its own (verify that found a mismatch).
    process.exitCode ??= EXIT_OK;
  } catch (e) {
    const usage = [InputError, LabelError, ImageRefError, CredentialsError, KeyError].some((t) => e instanceof t);
    process.stderr.write(`2dfs-push: ${e instanceof Error ? e.message : String(e)}\n`);
    if (!usage && process.env.DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    process.exitCode = usage ? EXIT_USAGE : EXIT_FAILURE;
  }
}
