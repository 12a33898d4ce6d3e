/** What a request's Authorization header holds, and checking a user's password. */
import { fromBase64 } from "../../core/encoding/base64.ts";
import type { TokenAuth } from "./config.ts";
import { countPasswordCheck, countWrongPassword } from "./login-limit.ts";
import { HASH_BYTES, verifyPassword, type PasswordHash } from "./password.ts";

export type Credentials =
  | { kind: "none" }
  | { kind: "basic"; user: string; password: string }
  | { kind: "bearer"; token: string }
  | { kind: "malformed" };

/** An absent or empty header (the reference builder always sends `Authorization:`) is no credentials. */
export function readCredentials(header: string | undefined): Credentials {
  const value = header?.trim() ?? "";
  if (value === "") return { kind: "none" };
  const m = /^(\S+)\s+(\S+)$/.exec(value);
  const scheme = m?.[1]?.toLowerCase();
  const param = m?.[2] ?? "";
  if (scheme === "bearer") return { kind: "bearer", token: param };
  if (scheme !== "basic") return { kind: "malformed" };
  const bytes = fromBase64(param);
  if (!bytes) return { kind: "malformed" };
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return { kind: "malformed" };
  }
  const colon = text.indexOf(":");
  if (colon <= 0) return { kind: "malformed" };
  return { kind: "basic", user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/**
 * Whether `password` is the user's. Each check is counted against the user name first, and
 * refused with 429 past the limit; a wrong one counts more (login-limit.ts). An unknown user
 * costs the same PBKDF2 work as a known one, so timing does not tell which user names exist.
 */
export async function checkPassword(auth: TokenAuth, user: string, password: string): Promise<boolean> {
  await countPasswordCheck(auth.limiter, user);
  const known = Object.hasOwn(auth.config.users, user) ? auth.config.users[user]?.password : undefined;
  const ok = (await verifyPassword(password, known ?? decoy(auth))) && known !== undefined;
  if (!ok) await countWrongPassword(auth.limiter, user);
  return ok;
}

/** A hash nothing matches, as expensive to check as the configured ones. */
function decoy(auth: TokenAuth): PasswordHash {
  const iterations = Object.values(auth.config.users)[0]?.password.iterations ?? 1;
  return { iterations, salt: new Uint8Array(16), hash: new Uint8Array(HASH_BYTES) };
}
