/**
 * What the auth middleware settles for each request (worker/auth/middleware.ts) and routes read
 * from `c.var.auth`. Kept apart from the middleware so that the Worker's environment types
 * (env.ts) need nothing that itself needs them.
 */
import type { TokenAuth } from "./config.ts";
import type { Subject } from "./policy.ts";
import type { Scope } from "./scope.ts";

/** Who is asking, and how they proved it. */
export interface Caller {
  subject: Subject;
  via: "nothing" | "password" | "token";
  /** For a token, everything it allows; Basic and anonymous callers are judged by the rules. */
  grants: Scope[];
}

export type AuthState = { mode: "none" } | { mode: "token"; auth: TokenAuth; caller: Caller };
