/**
 * The auth settings, read from Worker vars, secrets and bindings:
 *
 *   AUTH_MODE          "token" (the default, also when unset) or "none" (everything open)
 *   AUTH_CONFIG        secret, JSON: users with password hashes, access rules, admins, token lifetimes
 *   TOKEN_SIGNING_KEY  secret: the HMAC-SHA256 key that signs tokens
 *   LOGIN_LIMITER      Rate Limiting binding that throttles password guessing (login-limit.ts)
 *
 * Open mode is only ever what someone asked for: a missing or empty AUTH_MODE means token. Parsed
 * once per isolate and per distinct value. A configuration that cannot be used (secrets never
 * set, a typo) fails closed: every request is refused with 503 and the reason goes to the Worker
 * log (never to the client), see worker/auth/middleware.ts.
 */
import type { AuthBindings } from "./bindings.ts";
import { authConfigSchema, type AuthConfig } from "./config-schema.ts";
import { Policy } from "./policy.ts";

/** HS256 wants a key at least as long as its output; shorter keys are refused. */
const MIN_SIGNING_KEY_LENGTH = 32;

export interface TokenAuth {
  mode: "token";
  config: AuthConfig;
  policy: Policy;
  /** The HMAC key for tokens, imported once. */
  signingKey: Promise<CryptoKey>;
  /** Counts password checks per user name. */
  limiter: RateLimit;
}

export type AuthSettings = { mode: "none" } | TokenAuth;

/** A configuration the registry cannot run with. The message names the problem, never a value. */
export class AuthConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuthConfigError";
  }
}

/** What is parsed once: everything but the limiter binding, which is taken from each request's env. */
type ParsedSettings = { mode: "none" } | Omit<TokenAuth, "limiter">;

let memo: { key: string; settings: ParsedSettings | AuthConfigError } | undefined;

/** The settings for this environment; throws AuthConfigError when they are unusable. */
export function authSettings(env: AuthBindings): AuthSettings {
  const limiter = env.LOGIN_LIMITER;
  const key = JSON.stringify([env.AUTH_MODE, env.AUTH_CONFIG, env.TOKEN_SIGNING_KEY, limiter !== undefined]);
  if (memo?.key !== key) {
    let settings: ParsedSettings | AuthConfigError;
    try {
      settings = parseSettings(env);
    } catch (e) {
      if (!(e instanceof AuthConfigError)) throw e;
      settings = e;
      // Logged once per isolate and configuration, for `wrangler tail` and the dev console.
      console.error(`auth configuration refused: ${e.message}`);
    }
    memo = { key, settings };
  }
  const settings = memo.settings;
  if (settings instanceof AuthConfigError) throw settings;
  if (settings.mode === "none") return settings;
  // Checked by parseSettings, whose answer is memoized under the binding's presence.
  if (!limiter) throw new AuthConfigError("LOGIN_LIMITER is not bound");
  return { ...settings, limiter };
}

function parseSettings(env: AuthBindings): ParsedSettings {
  // Unset or empty means token: a deploy is closed unless its owner opens it.
  const mode = (env.AUTH_MODE ?? "").trim() || "token";
  if (mode === "none") return { mode: "none" };
  if (mode !== "token") throw new AuthConfigError(`AUTH_MODE must be "none" or "token", not "${mode.slice(0, 20)}"`);
  const { AUTH_CONFIG: configText, TOKEN_SIGNING_KEY: secret } = env;
  if (!configText || !secret) {
    const missing = [...(configText ? [] : ["AUTH_CONFIG"]), ...(secret ? [] : ["TOKEN_SIGNING_KEY"])];
    throw new AuthConfigError(
      `AUTH_MODE is "token" but ${missing.join(" and ")} ${missing.length > 1 ? "are" : "is"} not set, so every ` +
        "request is refused: put the secrets with `wrangler secret put` (.dev.vars for wrangler dev), or open " +
        "the registry on purpose with AUTH_MODE=none (docs/auth.md)",
    );
  }
  if (secret.length < MIN_SIGNING_KEY_LENGTH) {
    throw new AuthConfigError(`TOKEN_SIGNING_KEY must be set to at least ${MIN_SIGNING_KEY_LENGTH} characters`);
  }
  if (!env.LOGIN_LIMITER) {
    throw new AuthConfigError(
      "LOGIN_LIMITER is not bound: token auth needs the [[ratelimits]] binding of wrangler.toml against password guessing",
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(configText);
  } catch {
    // The parser's message quotes the text around the error, which may be a password hash.
    throw new AuthConfigError("AUTH_CONFIG is not valid JSON");
  }
  const parsed = authConfigSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new AuthConfigError(`AUTH_CONFIG is invalid: ${issues.join("; ")}`);
  }
  const signingKey = crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
  return { mode: "token", config: parsed.data, policy: new Policy(parsed.data), signingKey };
}
