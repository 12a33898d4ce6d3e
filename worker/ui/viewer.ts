/**
 * Who is looking at a page, and which repositories they may see. Pages are judged by the same
 * rules as the API (worker/auth): with AUTH_MODE=none everyone sees everything; with token auth
 * a visitor is anonymous unless the request carries credentials, and a repository is shown only
 * to someone the rules let pull it. A page never tells a hidden repository from a missing one.
 *
 * Pages are mounted in front of the API's auth gate, because a page answers a visitor without
 * credentials with HTML instead of an OCI challenge. The sign-in form keeps its token in the tab
 * (sessionStorage) and the client script sends it as `Authorization: Bearer`; a token names its
 * holder, whom the rules then judge, as the catalog does.
 */
import type { Context } from "hono";
import type { AppEnv } from "../env.ts";
import { serviceOf } from "../auth/challenge.ts";
import { checkPassword, readCredentials } from "../auth/credentials.ts";
import { settingsOf } from "../auth/middleware.ts";
import { ANONYMOUS, type Subject } from "../auth/policy.ts";
import { readAccessToken } from "../auth/tokens.ts";

export interface Viewer {
  /** Whether the registry asks for credentials at all (the page then offers a sign-in form). */
  authOn: boolean;
  /** The signed-in user's name, if any. */
  user?: string;
  /** Credentials were sent but are not (or no longer) valid: the client drops its token. */
  staleCredentials: boolean;
  mayPull(repo: string): boolean;
  /** Whether anyone may pull `repo` without credentials (pull commands then need none). */
  anonymousMayPull(repo: string): boolean;
}

export async function viewerOf(c: Context<AppEnv>): Promise<Viewer> {
  const settings = settingsOf(c);
  if (settings.mode === "none") {
    return { authOn: false, staleCredentials: false, mayPull: () => true, anonymousMayPull: () => true };
  }
  const creds = readCredentials(c.req.header("authorization"));
  let subject: Subject = ANONYMOUS;
  let stale = false;
  if (creds.kind === "bearer") {
    const grant = await readAccessToken(settings, serviceOf(c), creds.token);
    if (grant) subject = grant.subject;
    else stale = true;
  } else if (creds.kind === "basic") {
    if (await checkPassword(settings, creds.user, creds.password)) subject = { kind: "user", name: creds.user };
    else stale = true;
  } else if (creds.kind === "malformed") {
    stale = true;
  }
  const { policy } = settings;
  return {
    authOn: true,
    ...(subject.kind === "user" ? { user: subject.name } : {}),
    staleCredentials: stale,
    mayPull: (repo) => policy.repositoryActions(subject, repo).has("pull"),
    anonymousMayPull: (repo) => policy.repositoryActions(ANONYMOUS, repo).has("pull"),
  };
}
