/**
 * Password guessing is throttled with the Workers Rate Limiting binding LOGIN_LIMITER
 * (wrangler.toml `[[ratelimits]]`: so many password checks per user name per window). Past the
 * limit, a password check answers 429 TOOMANYREQUESTS with Retry-After, before any hash work.
 *
 * Every password check counts, right or wrong. The binding counts and answers in one call: it
 * cannot say whether a name is over its limit without counting one more attempt. If only wrong
 * passwords were counted, a right password would still be checked, and answered 200, while the
 * name is locked, so a guesser would go on learning which guess is right and the lock would slow
 * nothing. Counting every check costs honest clients little: docker, skopeo, containerd and
 * 2dfs-push sign in once per token and then use the token (Bearer requests and refresh-token
 * grants are never counted), and the limit leaves room for many such sign-ins.
 *
 * The key is the user name alone, not the client address: a guesser spread over many addresses
 * gets no more tries at one account than a guesser with one, and an unknown name is counted like
 * a known one, so a 429 tells nothing about which names exist. The price is that anyone can keep
 * a name from signing in with its password for a window by guessing at it; the tokens it already
 * holds keep working. Text that cannot be a user name shares one key: it never signs in, and
 * keys stay short. The counters are per Cloudflare location and approximate, as the binding's
 * documentation says.
 */
import { RegistryError } from "../../core/oci/errors.ts";
import { USER_NAME_RE } from "./config.ts";

/** The window of LOGIN_LIMITER in wrangler.toml: a client told to wait this long finds a new one. */
export const LOGIN_RETRY_AFTER_SECONDS = 60;

/** Counts one password check for `user`; throws 429 when there were too many, 503 when the binding fails. */
export async function countPasswordCheck(limiter: RateLimit, user: string): Promise<void> {
  const key = USER_NAME_RE.test(user) ? `user:${user}` : "not-a-user-name";
  let success: boolean;
  try {
    ({ success } = await limiter.limit({ key }));
  } catch (e) {
    // Without the counter, passwords could be guessed freely: refuse rather than check.
    console.error("login rate limiter failed", e);
    throw new RegistryError("UNAVAILABLE", "sign-in is unavailable right now; retry later");
  }
  if (!success) {
    throw new RegistryError("TOOMANYREQUESTS", "too many sign-in attempts for this user; retry later", undefined, {
      "Retry-After": String(LOGIN_RETRY_AFTER_SECONDS),
    });
  }
}
