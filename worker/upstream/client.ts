/**
 * Requests to an upstream registry, authenticated as any client would: anonymously, with Basic
 * credentials, or through the Docker token flow (core/oci/token-auth.ts). One Authenticator per
 * upstream per isolate keeps its tokens. Nothing this module throws or logs carries the
 * credentials or a token: errors name the upstream's host and the status only.
 */
import { RegistryError } from "../../core/oci/errors.ts";
import { AuthError, Authenticator, repositoryScope } from "../../core/oci/token-auth.ts";
import type { Upstream } from "./settings.ts";

/** The upstream could not be reached, or answered 5xx: a tag already known may be served instead. */
export class UpstreamDown extends Error {
  constructor(upstream: Upstream, why: string) {
    super(`upstream ${new URL(upstream.url).host} is unavailable: ${why}`);
    this.name = "UpstreamDown";
  }
}

const authenticators = new Map<string, Authenticator>();

function authenticatorFor(upstream: Upstream): Authenticator {
  const key = `${upstream.url}\n${upstream.credentials?.user ?? ""}\n${upstream.credentials?.password ?? ""}`;
  let a = authenticators.get(key);
  if (!a) {
    const creds = upstream.credentials
      ? { username: upstream.credentials.user, password: upstream.credentials.password }
      : {};
    a = new Authenticator(creds, {
      credentialsNeeded: `upstream ${new URL(upstream.url).host} asks for credentials and none are configured`,
    });
    authenticators.set(key, a);
  }
  return a;
}

/**
 * `method /v2/<remoteName>/<path>` on the upstream, once more after a 401 that names a way in.
 * Throws UpstreamDown when it cannot be reached or answers 5xx; a refusal of the registry's own
 * credentials is a 503 that says so.
 */
export async function upstreamRequest(
  upstream: Upstream,
  remoteName: string,
  method: "GET" | "HEAD",
  path: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  const auth = authenticatorFor(upstream);
  const scopes = [repositoryScope(remoteName, "pull")];
  const url = `${upstream.url}/v2/${remoteName}/${path}`;
  for (let attempt = 0; ; attempt++) {
    let authorization: string | undefined;
    try {
      authorization = await auth.header(scopes);
    } catch (e) {
      throw e instanceof AuthError ? refused(upstream, "its token service refused or failed") : e;
    }
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { ...headers, ...(authorization ? { Authorization: authorization } : {}) },
      });
    } catch (e) {
      throw new UpstreamDown(upstream, e instanceof Error ? e.message : String(e));
    }
    if (res.status >= 500) {
      await res.body?.cancel();
      throw new UpstreamDown(upstream, `HTTP ${res.status}`);
    }
    if (res.status !== 401 || attempt > 0) {
      if (res.status === 401 || res.status === 403) {
        await res.body?.cancel();
        throw refused(upstream, `HTTP ${res.status}`);
      }
      return res;
    }
    let again: boolean;
    try {
      again = auth.onUnauthorized(res.headers.get("www-authenticate"), scopes, authorization);
    } catch (e) {
      throw e instanceof AuthError ? refused(upstream, "it asks for credentials and none are configured") : e;
    } finally {
      await res.body?.cancel();
    }
    if (!again) throw refused(upstream, "HTTP 401 to the configured credentials");
  }
}

/** The reason is one of this module's own words: never an upstream's text, which might echo what was sent. */
function refused(upstream: Upstream, why: string): RegistryError {
  const host = new URL(upstream.url).host;
  console.error(`upstream ${host} refused the registry: ${why}`);
  return new RegistryError("UNAVAILABLE", `upstream ${host} refused the registry's access: ${why}`);
}
