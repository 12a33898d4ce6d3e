/**
 * Brute force: every password check for one user name is counted by the Workers Rate Limiting
 * binding (as miniflare runs it inside workerd), a wrong password five times over, and past the
 * limit GET /token, POST /token and Basic credentials on /v2/ answer 429 TOOMANYREQUESTS with
 * Retry-After, the right password included, until the window ends. The first tests use
 * LOGIN_LIMITER exactly as wrangler.toml ships it; the others use LOGIN_LIMITER_10S
 * (vitest.worker.config.mts), the same kind of binding with the shortest period it allows.
 *
 * Miniflare aligns windows to the wall clock (a window is `floor(now / period)`), so each burst
 * starts early in a window: a burst split over two windows would see two budgets.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { basic, bearer, errorCodeOf, fetchToken, usersWithPasswords, workerWith, type Call } from "./auth-support.ts";

/**
 * wrangler.toml `[[ratelimits]]` LOGIN_LIMITER: `simple = { limit = 300, period = 60 }`, where a
 * right password costs 1 and a wrong one 5 (worker/auth/login-limit.ts).
 */
const SHIPPED = { wrong: 60, right: 300, periodMs: 60_000 };
/** LOGIN_LIMITER_10S in vitest.worker.config.mts: `{ limit: 25, period: 10 }`. */
const SHORT = { wrong: 5, right: 25, periodMs: 10_000 };

const RUN = `rl${crypto.randomUUID().slice(0, 6)}`;
const REPO = `${RUN}/team-a/app`;
/** One user per test, so no test spends another's budget. */
const USERS = ["get", "post", "basic", "other", "known", "recover", "ok", "mixed"].map((u) => `${RUN}-${u}`);
const password = (user: string): string => `${user}-right-password`;

let config: string;
let shipped: Call;
let short: Call;

beforeAll(async () => {
  config = JSON.stringify({
    users: await usersWithPasswords(Object.fromEntries(USERS.map((u) => [u, password(u)]))),
    rules: [{ repos: `${RUN}/team-a/*`, push: USERS }],
  });
  shipped = workerWith({ AUTH_MODE: "token", AUTH_CONFIG: config });
  short = workerWith({ AUTH_MODE: "token", AUTH_CONFIG: config, LOGIN_LIMITER: env.LOGIN_LIMITER_10S });
});

const user = (name: string): string => `${RUN}-${name}`;

/** The three ways to present a password, each answering 401 (or 200) the way it does without a limit. */
const SIGN_INS = {
  "GET /token": (call: Call, name: string, pw: string) =>
    call(`/token?service=registry.test&scope=repository:${REPO}:pull`, { headers: { Authorization: basic(name, pw) } }),
  "POST /token": (call: Call, name: string, pw: string) =>
    call("/token", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "password", username: name, password: pw, scope: "" }).toString(),
    }),
  "Basic on /v2/": (call: Call, name: string, pw: string) =>
    call("/v2/", { headers: { Authorization: basic(name, pw) } }),
};
type SignIn = keyof typeof SIGN_INS;

/** Waits for a fresh window when less than `needMs` of the current one is left. */
async function startOfWindow(periodMs: number, needMs: number): Promise<void> {
  const left = periodMs - (Date.now() % periodMs);
  if (left < needMs) await sleep(left + 100);
}

/** Waits until the window that holds now has ended. */
async function endOfWindow(periodMs: number): Promise<void> {
  await sleep(periodMs - (Date.now() % periodMs) + 250);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function statuses(times: number, request: () => Promise<Response>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < times; i++) {
    const res = await request();
    await res.body?.cancel();
    out.push(res.status);
  }
  return out;
}

async function expectTooMany(res: Response, retryAfter: string): Promise<void> {
  expect(res.status).toBe(429);
  expect(await errorCodeOf(res)).toBe("TOOMANYREQUESTS");
  expect(res.headers.get("Retry-After")).toBe(retryAfter);
}

describe("the shipped limiter (60 wrong or 300 right passwords per user name per minute)", () => {
  it.each([
    ["GET /token", "get"],
    ["POST /token", "post"],
    ["Basic on /v2/", "basic"],
  ] as const)("%s: a burst of wrong passwords ends in 429 with Retry-After, the right one too", async (via, who) => {
    const signIn = SIGN_INS[via as SignIn];
    const name = user(who);
    await startOfWindow(SHIPPED.periodMs, 20_000);
    expect(await statuses(SHIPPED.wrong, () => signIn(shipped, name, "wrong"))).toEqual(
      Array<number>(SHIPPED.wrong).fill(401),
    );
    await expectTooMany(await signIn(shipped, name, "wrong"), "60");
    // The lock holds for the right password as well: a guesser learns nothing from it.
    await expectTooMany(await signIn(shipped, name, password(name)), "60");
    // Other users sign in as before.
    const other = await signIn(shipped, user("other"), password(user("other")));
    expect(other.status).toBe(200);
  });

  it("counts an unknown user name like a known one, so a 429 does not tell which names exist", async () => {
    const unknown = `${RUN}-nobody`;
    const known = user("known");
    await startOfWindow(SHIPPED.periodMs, 20_000);
    const [forUnknown, forKnown] = await Promise.all([
      statuses(SHIPPED.wrong + 1, () => SIGN_INS["GET /token"](shipped, unknown, "wrong")),
      statuses(SHIPPED.wrong + 1, () => SIGN_INS["GET /token"](shipped, known, "wrong")),
    ]);
    const expected = [...Array<number>(SHIPPED.wrong).fill(401), 429];
    expect(forUnknown).toEqual(expected);
    expect(forKnown).toEqual(expected);
  });
});

describe("a 10-second limiter (5 wrong or 25 right per window)", () => {
  it("locks every way of signing in after a burst, keeps issued tokens working, and lets the right password in after the window", async () => {
    const name = user("recover");
    await startOfWindow(SHORT.periodMs, 6_000);
    // One sign-in for a token (1 of 25), then five wrong passwords (5 each) fill the budget.
    const token = (await fetchToken(short, [`repository:${REPO}:pull`], basic(name, password(name)))).token;
    expect(await statuses(SHORT.wrong, () => SIGN_INS["GET /token"](short, name, "wrong"))).toEqual(
      Array<number>(SHORT.wrong).fill(401),
    );
    for (const via of Object.keys(SIGN_INS) as SignIn[]) {
      await expectTooMany(await SIGN_INS[via](short, name, password(name)), "60");
    }
    // A token issued before the lock is not a password check: it still works (the repository is
    // empty, so the answer is the registry's own 404, past auth).
    const withToken = await short(`/v2/${REPO}/tags/list`, { headers: { Authorization: bearer(token) } });
    expect(withToken.status).toBe(404);
    expect(await errorCodeOf(withToken)).toBe("NAME_UNKNOWN");

    await endOfWindow(SHORT.periodMs);
    for (const via of Object.keys(SIGN_INS) as SignIn[]) {
      const res = await SIGN_INS[via](short, name, password(name));
      expect(res.status, via).toBe(200);
    }
  }, 30_000);

  it("counts right passwords too, at a fifth of a wrong one: 25 sign-ins in a window, then 429", async () => {
    const name = user("ok");
    await startOfWindow(SHORT.periodMs, 6_000);
    expect(await statuses(SHORT.right, () => SIGN_INS["GET /token"](short, name, password(name)))).toEqual(
      Array<number>(SHORT.right).fill(200),
    );
    await expectTooMany(await SIGN_INS["GET /token"](short, name, password(name)), "60");
  });

  it("adds both up: 4 wrong passwords and 5 right ones fill a window", async () => {
    const name = user("mixed");
    await startOfWindow(SHORT.periodMs, 6_000);
    expect(await statuses(4, () => SIGN_INS["POST /token"](short, name, "wrong"))).toEqual([401, 401, 401, 401]);
    expect(await statuses(5, () => SIGN_INS["Basic on /v2/"](short, name, password(name)))).toEqual([
      200, 200, 200, 200, 200,
    ]);
    await expectTooMany(await SIGN_INS["GET /token"](short, name, password(name)), "60");
  });
});
