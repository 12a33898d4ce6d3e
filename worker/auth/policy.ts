/**
 * Who may do what, from AUTH_CONFIG. Every rule whose pattern matches a repository adds its
 * grants (rules are a union, order does not matter); admins may do everything. `push` and
 * `delete` each include `pull`, because no client pushes or deletes without reading first.
 * A user list may hold `*`: any signed-in user. `anonymousPull` lets everyone pull, signed in
 * or not.
 */
import type { AuthConfig } from "./config-schema.ts";
import { compileRepoPattern } from "./glob.ts";
import { REPOSITORY_ACTIONS, type RepositoryAction, type Scope } from "./scope.ts";

export type Subject = { kind: "anonymous" } | { kind: "user"; name: string };

export const ANONYMOUS: Subject = { kind: "anonymous" };

interface CompiledRule {
  patterns: RegExp[];
  pull: ReadonlySet<string>;
  push: ReadonlySet<string>;
  delete: ReadonlySet<string>;
  anonymousPull: boolean;
}

export class Policy {
  private readonly rules: CompiledRule[];
  private readonly admins: ReadonlySet<string>;

  constructor(config: AuthConfig) {
    this.admins = new Set(config.admins);
    this.rules = config.rules.map((r) => ({
      patterns: r.repos.map(compileRepoPattern),
      pull: new Set(r.pull),
      push: new Set(r.push),
      delete: new Set(r.delete),
      anonymousPull: r.anonymousPull,
    }));
  }

  isAdmin(subject: Subject): boolean {
    return subject.kind === "user" && this.admins.has(subject.name);
  }

  /** The actions `subject` may take on repository `repo`. */
  repositoryActions(subject: Subject, repo: string): Set<RepositoryAction> {
    if (this.isAdmin(subject)) return new Set(REPOSITORY_ACTIONS);
    const out = new Set<RepositoryAction>();
    for (const rule of this.rules) {
      if (!rule.patterns.some((p) => p.test(repo))) continue;
      if (rule.anonymousPull) out.add("pull");
      if (subject.kind !== "user") continue;
      const listed = (users: ReadonlySet<string>) => users.has(subject.name) || users.has("*");
      if (listed(rule.pull)) out.add("pull");
      if (listed(rule.push)) out.add("push").add("pull");
      if (listed(rule.delete)) out.add("delete").add("pull");
    }
    return out;
  }

  /** Whether `subject` may take `action` on a resource, by the rules alone (no token involved). */
  allows(subject: Subject, type: Scope["type"], name: string, action: string): boolean {
    if (type === "repository") return this.repositoryActions(subject, name).has(action as RepositoryAction);
    // Anyone may ask for the catalog: its listing is filtered to what the caller may pull.
    if (name === "catalog") return true;
    return name === "admin" && this.isAdmin(subject);
  }

  /** What a token for `subject` may carry: the requested scopes cut down to what the rules allow. */
  grant(subject: Subject, requested: readonly Scope[]): Scope[] {
    const out: Scope[] = [];
    for (const s of requested) {
      const asked = s.actions.includes("*") ? (s.type === "repository" ? [...REPOSITORY_ACTIONS] : ["*"]) : s.actions;
      const actions = asked.filter((a) => this.allows(subject, s.type, s.name, a));
      if (actions.length > 0) out.push({ ...s, actions });
    }
    return out;
  }
}
