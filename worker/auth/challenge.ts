/**
 * How the registry tells a client to authenticate: `401` with
 * `WWW-Authenticate: Bearer realm="<origin>/token",service="<host>",scope="<the scope needed>"`,
 * plus `error="invalid_token"` for a bad token or `error="insufficient_scope"` when a new token
 * for that scope would be granted (RFC 6750 §3).
 */
import type { Context } from "hono";
import { RegistryError } from "../../core/oci/errors.ts";
import type { AppEnv } from "../env.ts";
import type { Requirement } from "./requirement.ts";
import { formatScope } from "./scope.ts";

export const TOKEN_PATH = "/token";

/** The token audience: the host clients reach the registry by. */
export function serviceOf(c: Context<AppEnv>): string {
  return new URL(c.req.url).host;
}

export type ChallengeError = "invalid_token" | "insufficient_scope";

export function unauthorized(c: Context<AppEnv>, need: Requirement, error?: ChallengeError): RegistryError {
  const url = new URL(c.req.url);
  const params = [`realm="${url.origin}${TOKEN_PATH}"`, `service="${url.host}"`];
  if (need.kind === "access") params.push(`scope="${formatScope(need.challenge)}"`);
  if (error) params.push(`error="${error}"`);
  return new RegistryError("UNAUTHORIZED", undefined, detailOf(need), {
    "WWW-Authenticate": `Bearer ${params.join(",")}`,
  });
}

export function denied(need: Requirement): RegistryError {
  return new RegistryError("DENIED", undefined, detailOf(need));
}

/** What was needed, as distribution reports it; never anything about the credentials. */
function detailOf(need: Requirement): unknown {
  return need.kind === "access" ? [{ type: need.type, name: need.name, action: need.action }] : undefined;
}
