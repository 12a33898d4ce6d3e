/** Flags every registry-facing command shares, and the credentials they lead to. */
import { text } from "node:stream/consumers";
import { resolveCredentials } from "../registry/credentials.ts";
import type { AuthOptions } from "../registry/auth.ts";

export interface RegistryFlags {
  plainHttp?: boolean;
  username?: string;
  passwordStdin?: boolean;
}

/** Looks credentials up for one registry: a function, because copy and build may talk to two. */
export type AuthLookup = (registry: string) => Promise<AuthOptions | undefined>;

/**
 * What --password-stdin read. stdin can be read once: every lookup of the command shares it (a
 * `build --push` looks up credentials for its base's registry and again for the push).
 */
let stdinPassword: Promise<string> | undefined;

/** Credentials from the flags, else the environment, else docker's config (see registry/credentials.ts). */
export function authLookup(flags: RegistryFlags): AuthLookup {
  return async (registry) => {
    if (flags.passwordStdin) stdinPassword ??= text(process.stdin).then((s) => s.replace(/\r?\n$/, ""));
    const pw = flags.passwordStdin ? await stdinPassword : undefined;
    const found = await resolveCredentials({
      registry,
      ...(flags.username ? { username: flags.username } : {}),
      ...(pw !== undefined ? { password: pw } : {}),
    });
    return found ? { username: found.username, password: found.password } : undefined;
  };
}
