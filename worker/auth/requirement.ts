/**
 * The access a request needs, from its method and path. The path is read the way the router
 * reads it (worker/app.ts mounts uploads, blobs, manifests, then listings; every repository name
 * is the greedy `.+` before the resource), so the name checked here is the name the route serves.
 */
import { validateName } from "../../core/oci/reference.ts";
import type { RepositoryAction, Scope } from "./scope.ts";

export type Requirement =
  /** GET /v2/: any valid credentials (this is how clients learn that auth is on). */
  | { kind: "signed-in" }
  /** `action` on the resource; `challenge` is the scope clients should ask a token for. */
  | { kind: "access"; type: Scope["type"]; name: string; action: string; challenge: Scope };

const ROUTES: { re: RegExp; action: (method: string) => RepositoryAction }[] = [
  // Every upload step, cancelling included, is part of a push.
  { re: /^\/v2\/(.+)\/blobs\/uploads\/[^/]*$/, action: () => "push" },
  { re: /^\/v2\/(.+)\/blobs\/[^/]+$/, action: readOrDelete },
  { re: /^\/v2\/(.+)\/manifests\/[^/]+$/, action: readOrDelete },
  { re: /^\/v2\/(.+)\/tags\/list$/, action: readOrDelete },
  { re: /^\/v2\/(.+)\/referrers\/[^/]+$/, action: readOrDelete },
];

/** GET and HEAD read; DELETE deletes; any other method writes (or finds no route, after auth). */
function readOrDelete(method: string): RepositoryAction {
  if (method === "GET" || method === "HEAD") return "pull";
  return method === "DELETE" ? "delete" : "push";
}

export function requirementOf(method: string, path: string): Requirement {
  if (path === "/v2/" || path === "/v2") return { kind: "signed-in" };
  if (path === "/v2/_catalog") return registry("catalog");
  for (const route of ROUTES) {
    const m = route.re.exec(path);
    if (!m) continue;
    // An invalid name is refused here, before anything is decided about it.
    const name = validateName(m[1] ?? "");
    const action = route.action(method);
    // Docker clients ask for pull and push together for any write; one token then serves the push.
    const actions = action === "push" ? ["pull", "push"] : [action];
    return { kind: "access", type: "repository", name, action, challenge: { type: "repository", name, actions } };
  }
  // Anything else (a future maintenance endpoint, a stray path) is for admins only.
  return registry("admin");
}

function registry(name: "catalog" | "admin"): Requirement {
  return { kind: "access", type: "registry", name, action: "*", challenge: { type: "registry", name, actions: ["*"] } };
}
