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

/** Credentials from the flags, else the environment, else docker's config (see registry/credentials.ts). */
export function authLookup(flags: RegistryFlags): AuthLookup {
  // stdin can be read once; every registry of the command shares what it held.
  let password: Promise<string> | undefined;
  return async (registry) => {
    if (flags.passwordStdin) password ??= text(process.stdin).then((s) => s.replace(/\r?\n$/, ""));
    const pw = password ? await password : undefined;
    const found = await resolveCredentials({
      registry,
      ...(flags.username ? { username: flags.username } : {}),
      ...(pw !== undefined ? { password: pw } : {}),
    });
    return found ? { username: found.username, password: found.password } : undefined;
  };
}
