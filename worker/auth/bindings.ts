/** The auth settings, secrets and binding the Worker reads (wrangler.toml, `wrangler secret`, .dev.vars). */
export interface AuthBindings {
  /** "token" (the default: closed) or "none" (open, only when asked for): see docs/auth.md. */
  AUTH_MODE?: string;
  /** Users, password hashes and access rules (JSON); a secret in production. */
  AUTH_CONFIG?: string;
  /** The HMAC-SHA256 key that signs tokens; a wrangler secret. */
  TOKEN_SIGNING_KEY?: string;
  /** Rate Limiting binding ([[ratelimits]]): password checks per user name (worker/auth/login-limit.ts). */
  LOGIN_LIMITER?: RateLimit;
}
