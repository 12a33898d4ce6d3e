/**
 * Password guessing is throttled with the Workers Rate Limiting binding LOGIN_LIMITER
 * (wrangler.toml `[[ratelimits]]`): one counter per user name and window. Every password check
 * costs one unit before any hash work, and a wrong password FAILURE_WEIGHT units in all; once the
 * counter reaches the limit, password checks for that name answer 429 TOOMANYREQUESTS with
 * Retry-After until the window ends. With the shipped limit of 300 a minute that is 60 wrong
 * passwords, or 300 right ones.
 *
 * Right passwords count too. The binding counts and answers in one call: it cannot say whether
 * a name is over its limit without counting one more attempt, so the check has to come first,
 * for every attempt. If right passwords went around it, a locked name would still answer 200 to
 * the right guess, a guesser would go on learning which guess is right, and the lock would slow
 * nothing. A right password costs a fifth of a wrong one because honest clients sign in often:
 * 2dfs-push fetches a token per blob it uploads in parallel, docker and skopeo one per
 * repository, so a CI job pushing many model variants at once spends dozens of checks a minute
 * without a single mistake. Bearer requests and refresh-token grants are never counted.
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
import { USER_NAME_RE } from "./config-schema.ts";

/** The window of LOGIN_LIMITER in wrangler.toml: a client told to wait this long finds a new one. */
export const LOGIN_RETRY_AFTER_SECONDS = 60;

/** How many units a wrong password costs in all, against one for a right one. */
export const FAILURE_WEIGHT = 5;

/** Counts one password check for `user`, before it is made; throws 429 past the limit. */
export async function countPasswordCheck(limiter: RateLimit, user: string): Promise<void> {
  if (!(await take(limiter, user))) {
    throw new RegistryError("TOOMANYREQUESTS", "too many sign-in attempts for this user; retry later", undefined, {
      "Retry-After": String(LOGIN_RETRY_AFTER_SECONDS),
    });
  }
}

/**
 * Adds the rest of a wrong password's weight. The binding takes one unit per call (its `delta`
 * option is not simulated locally), so the calls run side by side.
 */
export async function countWrongPassword(limiter: RateLimit, user: string): Promise<void> {
  await Promise.all(Array.from({ length: FAILURE_WEIGHT - 1 }, () => take(limiter, user)));
}

/** One unit off `user`'s budget: false when there was none left; 503 when the binding fails. */
async function take(limiter: RateLimit, user: string): Promise<boolean> {
  const key = USER_NAME_RE.test(user) ? `user:${user}` : "not-a-user-name";
  try {
    return (await limiter.limit({ key })).success;
  } catch (e) {
    // Without the counter, passwords could be guessed freely: refuse rather than check.
    console.error("login rate limiter failed", e);
    throw new RegistryError("UNAVAILABLE", "sign-in is unavailable right now; retry later");
  }
}
