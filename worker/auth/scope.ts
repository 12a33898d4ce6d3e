/**
 * Scopes as the Docker token protocol spells them, `type:name:action[,action]`:
 * `repository:team-a/app:pull,push`, `registry:catalog:*`. Clients ask for them at /token, the
 * registry names the one a request needs in its WWW-Authenticate challenge, and an access token
 * carries the granted ones in its `access` claim.
 */
import { isValidName } from "../../core/oci/reference.ts";

export interface Scope {
  type: "repository" | "registry";
  name: string;
  actions: string[];
}

export type RepositoryAction = "pull" | "push" | "delete";
export const REPOSITORY_ACTIONS: readonly RepositoryAction[] = ["pull", "push", "delete"];

/** `registry:catalog:*` lists repositories; `registry:admin:*` reaches endpoints outside the OCI API. */
export const REGISTRY_RESOURCES = ["catalog", "admin"] as const;

export function formatScope(s: Scope): string {
  return `${s.type}:${s.name}:${s.actions.join(",")}`;
}

/** One scope string; undefined for types and names this registry does not know. */
export function parseScope(text: string): Scope | undefined {
  const first = text.indexOf(":");
  const last = text.lastIndexOf(":");
  if (first <= 0 || last === first) return undefined;
  const type = text.slice(0, first);
  const name = text.slice(first + 1, last);
  const actions = [
    ...new Set(
      text
        .slice(last + 1)
        .split(",")
        .filter((a) => a !== ""),
    ),
  ];
  if (type === "repository" && isValidName(name)) return { type, name, actions };
  if (type === "registry" && (REGISTRY_RESOURCES as readonly string[]).includes(name)) return { type, name, actions };
  return undefined;
}

/**
 * The scopes of a token request. GET repeats `scope=`; the OAuth2 POST form separates them with
 * spaces; both are accepted in both. Unknown scopes are dropped, as token servers do; the same
 * resource named twice is merged.
 */
export function parseScopes(values: readonly string[]): Scope[] {
  const merged = new Map<string, Scope>();
  for (const text of values.flatMap((v) => v.split(/\s+/)).filter((t) => t !== "")) {
    const s = parseScope(text);
    if (!s) continue;
    const key = `${s.type}:${s.name}`;
    const prev = merged.get(key);
    merged.set(key, prev ? { ...s, actions: [...new Set([...prev.actions, ...s.actions])] } : s);
  }
  return [...merged.values()];
}
