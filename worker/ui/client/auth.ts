/**
 * Sign-in for registries with token auth. The token comes from the registry's own /token (the
 * OAuth2 password grant) and is kept in sessionStorage only: it lives as long as this tab, is
 * never a cookie and is never sent anywhere but this origin. Pages are rendered for anonymous
 * visitors first; with a token the client asks for the same page again with
 * `Authorization: Bearer` and shows that instead.
 */

const KEY = "2dfs-ui-token";

interface Stored {
  user: string;
  token: string;
  /** ms since epoch. */
  expires: number;
  refresh?: string;
}

interface TokenAnswer {
  access_token?: string;
  token?: string;
  expires_in?: number;
  refresh_token?: string;
  error_description?: string;
}

function load(): Stored | undefined {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Stored) : undefined;
  } catch {
    return undefined;
  }
}

export function signedInUser(): string | undefined {
  return load()?.user;
}

export function signOut(): void {
  sessionStorage.removeItem(KEY);
}

async function requestToken(form: Record<string, string>): Promise<TokenAnswer & { ok: boolean }> {
  const res = await fetch("/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ service: location.host, client_id: "2dfs-ui", ...form }),
  });
  const body = (await res.json().catch(() => ({}))) as TokenAnswer;
  return { ...body, ok: res.ok };
}

function keep(user: string, answer: TokenAnswer, refresh: string | undefined): void {
  const token = answer.access_token ?? answer.token ?? "";
  const stored: Stored = { user, token, expires: Date.now() + (answer.expires_in ?? 60) * 1000 };
  if (refresh) stored.refresh = refresh;
  sessionStorage.setItem(KEY, JSON.stringify(stored));
}

/** Signs in; returns an error message, or undefined on success. */
export async function signIn(user: string, password: string): Promise<string | undefined> {
  const answer = await requestToken({
    grant_type: "password",
    username: user,
    password,
    access_type: "offline",
    scope: "registry:catalog:*",
  });
  if (!answer.ok) return answer.error_description ?? "Sign-in failed.";
  keep(user, answer, answer.refresh_token);
  return undefined;
}

/** Headers that carry the tab's token, renewed with the refresh token when it has run out. */
export async function authHeaders(): Promise<Record<string, string>> {
  const stored = load();
  if (!stored) return {};
  if (stored.expires - Date.now() < 10_000) {
    if (!stored.refresh) {
      signOut();
      return {};
    }
    const answer = await requestToken({ grant_type: "refresh_token", refresh_token: stored.refresh });
    if (!answer.ok) {
      signOut();
      return {};
    }
    keep(stored.user, answer, stored.refresh);
  }
  const token = load()?.token;
  return token ? { Authorization: `Bearer ${token}` } : {};
}
