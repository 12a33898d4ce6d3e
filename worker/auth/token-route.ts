/**
 * The token endpoint of the Docker registry token flow.
 *
 *   GET  /token?service=&scope=...[&offline_token=true]   Basic credentials, or none (anonymous)
 *   POST /token   OAuth2 form: grant_type=password (username, password) or
 *                 grant_type=refresh_token (refresh_token); scope=space-separated; access_type=offline
 *
 * The token grants the requested scopes cut down to what the rules allow (anonymous callers get
 * what anonymousPull allows, and the catalog). Nothing requested, or nothing allowed, still gives
 * a valid token with an empty access list, as Docker's token servers do: what it cannot do is
 * decided when it is used. The `service` parameter is not trusted: tokens are always issued for
 * the host this request reached.
 */
import { Hono, type Context } from "hono";
import { RegistryError } from "../../core/oci/errors.ts";
import type { AppEnv } from "../env.ts";
import { readLimited } from "../storage/streams.ts";
import { serviceOf, TOKEN_PATH } from "./challenge.ts";
import type { TokenAuth } from "./config.ts";
import { checkPassword, readCredentials } from "./credentials.ts";
import { settingsOf } from "./middleware.ts";
import { ANONYMOUS, type Subject } from "./policy.ts";
import { formatScope, parseScopes, type Scope } from "./scope.ts";
import { issueAccessToken, issueRefreshToken, readRefreshToken } from "./tokens.ts";

export const tokenRoutes = new Hono<AppEnv>();

/** An OAuth2 form is a few hundred bytes; anything much larger is not one. */
const FORM_MAX_BYTES = 64 * 1024;

tokenRoutes.get(TOKEN_PATH, async (c) => {
  const auth = tokenAuth(c);
  const creds = readCredentials(c.req.header("authorization"));
  let subject: Subject = ANONYMOUS;
  if (creds.kind === "basic" && (await checkPassword(auth, creds.user, creds.password))) {
    subject = { kind: "user", name: creds.user };
  } else if (creds.kind !== "none") {
    throw new RegistryError("UNAUTHORIZED", "invalid username or password", undefined, {
      "WWW-Authenticate": `Basic realm="${serviceOf(c)}"`,
    });
  }
  const offline = c.req.query("offline_token") === "true";
  return tokenResponse(c, auth, subject, parseScopes(c.req.queries("scope") ?? []), offline);
});

tokenRoutes.post(TOKEN_PATH, async (c) => {
  const auth = tokenAuth(c);
  const form = new URLSearchParams(new TextDecoder().decode(await readLimited(c.req.raw.body, FORM_MAX_BYTES)));
  const scopes = parseScopes(form.getAll("scope"));
  const grantType = form.get("grant_type");
  if (grantType === "password") {
    const user = form.get("username") ?? "";
    const password = form.get("password") ?? "";
    if (user === "") return oauthError(400, "invalid_request", "username and password are required");
    if (!(await checkPassword(auth, user, password))) {
      return oauthError(401, "invalid_grant", "invalid username or password");
    }
    return tokenResponse(c, auth, { kind: "user", name: user }, scopes, form.get("access_type") === "offline", true);
  }
  if (grantType === "refresh_token") {
    const user = await readRefreshToken(auth, serviceOf(c), form.get("refresh_token") ?? "");
    if (user === undefined) return oauthError(401, "invalid_grant", "refresh token is invalid or expired");
    return tokenResponse(c, auth, { kind: "user", name: user }, scopes, false, true);
  }
  return oauthError(400, "unsupported_grant_type", "grant_type must be password or refresh_token");
});

/** The token settings; with auth off there is no token endpoint. */
function tokenAuth(c: Context<AppEnv>): TokenAuth {
  const settings = settingsOf(c);
  if (settings.mode === "none") throw new RegistryError("NOT_FOUND", "authentication is off: no tokens are needed");
  return settings;
}

async function tokenResponse(
  c: Context<AppEnv>,
  auth: TokenAuth,
  subject: Subject,
  requested: Scope[],
  offline: boolean,
  oauth = false,
): Promise<Response> {
  const service = serviceOf(c);
  const access = auth.policy.grant(subject, requested);
  const issued = await issueAccessToken(auth, service, { subject, access });
  const body: Record<string, unknown> = {
    // `token` is what Docker's GET flow reads, `access_token` what OAuth2 clients read.
    token: issued.token,
    access_token: issued.token,
    expires_in: issued.expiresIn,
    issued_at: issued.issuedAt,
  };
  if (oauth) body.scope = access.map(formatScope).join(" ");
  if (offline && subject.kind === "user") body.refresh_token = await issueRefreshToken(auth, service, subject.name);
  return new Response(JSON.stringify(body), {
    status: 200,
    headers: { "Content-Type": "application/json", "Cache-Control": "no-store" },
  });
}

/** RFC 6749 §5.2 error body, which OAuth2 clients expect from the POST form. */
function oauthError(status: 400 | 401, error: string, description: string): Response {
  return new Response(JSON.stringify({ error, error_description: description }), {
    status,
    headers: { "Content-Type": "application/json", "Cache-Control": "no-store" },
  });
}
