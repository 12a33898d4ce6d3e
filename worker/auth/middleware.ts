/**
 * The gate in front of every route but /token. With AUTH_MODE=none it lets everything through.
 * With AUTH_MODE=token it works out what the request needs (requirement.ts) and who is asking:
 *
 *   no credentials      judged by the rules as anonymous; refused with 401 and a challenge
 *   Basic user:pass     checked against AUTH_CONFIG; a wrong password is 401, a refusal 403
 *   Bearer token        the token's grants are all it allows; a bad or expired token is 401
 *
 * A token without the scope a request needs gets 401 with `error="insufficient_scope"` when the
 * rules would grant that scope to its holder: clients (docker, containerd, skopeo) then fetch a
 * token for it and retry once. When the rules would not, a signed-in holder gets 403 DENIED
 * straight away, so the client reports "denied" instead of looping; an anonymous holder gets the
 * plain 401 that asks for credentials.
 */
import type { Context, MiddlewareHandler } from "hono";
import { RegistryError } from "../../core/oci/errors.ts";
import type { AppEnv } from "../env.ts";
import { denied, serviceOf, TOKEN_PATH, unauthorized } from "./challenge.ts";
import { AuthConfigError, authSettings, type AuthSettings, type TokenAuth } from "./config.ts";
import { checkPassword, readCredentials } from "./credentials.ts";
import { ANONYMOUS } from "./policy.ts";
import { requirementOf, type Requirement } from "./requirement.ts";
import type { AuthState, Caller } from "./state.ts";
import { readAccessToken } from "./tokens.ts";

export type { AuthState, Caller } from "./state.ts";

const OPEN: AuthState = { mode: "none" };

export const authorize: MiddlewareHandler<AppEnv> = async (c, next) => {
  const settings = settingsOf(c);
  if (settings.mode === "none") {
    c.set("auth", OPEN);
    return next();
  }
  // The token endpoint checks its own credentials.
  if (c.req.path === TOKEN_PATH) return next();
  const need = requirementOf(c.req.method, c.req.path);
  const caller = await identify(c, settings, need);
  c.set("auth", { mode: "token", auth: settings, caller });
  if (!satisfies(settings, caller, need)) throw refusal(c, settings, caller, need);
  return next();
};

/**
 * The auth settings, or 503 when they cannot be used (secrets not set, a typo): a broken
 * configuration never lets anyone in, and the client learns only that the registry is not
 * available, not what is wrong with it.
 */
export function settingsOf(c: Context<AppEnv>): AuthSettings {
  try {
    return authSettings(c.env);
  } catch (e) {
    if (e instanceof AuthConfigError) {
      throw new RegistryError("UNAVAILABLE", "registry authentication is not configured; the Worker log says why");
    }
    throw e;
  }
}

/**
 * Whether the caller may pull `repo`: for routes that read a second repository, such as a
 * cross-repository mount's `from`.
 */
export function mayPull(c: Context<AppEnv>, repo: string): boolean {
  const state = c.var.auth;
  if (state.mode === "none") return true;
  const need: Requirement = {
    kind: "access",
    type: "repository",
    name: repo,
    action: "pull",
    challenge: { type: "repository", name: repo, actions: ["pull"] },
  };
  return satisfies(state.auth, state.caller, need);
}

/**
 * Whether the caller may mount a blob by digest alone (a mount without `from`). Any repository
 * may hold that blob, so only a caller who may pull everything can: otherwise knowing a digest
 * would be enough to read a private blob.
 */
export function mayMountFromAnywhere(c: Context<AppEnv>): boolean {
  const state = c.var.auth;
  return state.mode === "none" || state.auth.policy.isAdmin(state.caller.subject);
}

/**
 * Which repositories the caller may see in the catalog: those the rules let them pull (a
 * token's subject is judged by the rules, since the catalog scope names no repository).
 * Undefined when the caller sees everything.
 */
export function catalogFilter(c: Context<AppEnv>): ((repo: string) => boolean) | undefined {
  const state = c.var.auth;
  if (state.mode === "none") return undefined;
  const { policy } = state.auth;
  const { subject } = state.caller;
  if (policy.isAdmin(subject)) return undefined;
  return (repo) => policy.repositoryActions(subject, repo).has("pull");
}

async function identify(c: Context<AppEnv>, auth: TokenAuth, need: Requirement): Promise<Caller> {
  const creds = readCredentials(c.req.header("authorization"));
  switch (creds.kind) {
    case "none":
      return { subject: ANONYMOUS, via: "nothing", grants: [] };
    case "basic":
      if (!(await checkPassword(auth, creds.user, creds.password))) throw unauthorized(c, need);
      return { subject: { kind: "user", name: creds.user }, via: "password", grants: [] };
    case "bearer": {
      const grant = await readAccessToken(auth, serviceOf(c), creds.token);
      if (!grant) throw unauthorized(c, need, "invalid_token");
      return { subject: grant.subject, via: "token", grants: grant.access };
    }
    case "malformed":
      throw unauthorized(c, need);
  }
}

function satisfies(auth: TokenAuth, caller: Caller, need: Requirement): boolean {
  if (need.kind === "signed-in") return caller.via !== "nothing";
  if (caller.via !== "token") return auth.policy.allows(caller.subject, need.type, need.name, need.action);
  return caller.grants.some(
    (g) => g.type === need.type && g.name === need.name && (g.actions.includes(need.action) || g.actions.includes("*")),
  );
}

function refusal(c: Context<AppEnv>, auth: TokenAuth, caller: Caller, need: Requirement): RegistryError {
  if (need.kind === "signed-in" || caller.via === "nothing") return unauthorized(c, need);
  const wouldGrant = auth.policy.allows(caller.subject, need.type, need.name, need.action);
  if (caller.via === "token" && wouldGrant) return unauthorized(c, need, "insufficient_scope");
  // An anonymous token holder lacks credentials, not scope: ask for them.
  if (caller.subject.kind === "anonymous") return unauthorized(c, need);
  return denied(need);
}
