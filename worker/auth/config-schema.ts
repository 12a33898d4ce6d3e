/**
 * The JSON format of the AUTH_CONFIG secret: users with password hashes, access rules, admins and
 * token lifetimes. It has a module of its own so that imports point one way: the rules (policy.ts)
 * read the parsed type, and the settings reader (config.ts) parses with it and builds the rules.
 * docs/auth.md describes the format for operators.
 */
import * as z from "../../core/zod.ts";
import { PATTERN_RE } from "./glob.ts";
import { parsePasswordHash, type PasswordHash } from "./password.ts";

/** User names travel in Basic credentials, where the first `:` ends the name. */
export const USER_NAME_RE = /^[A-Za-z0-9._@-]{1,128}$/;

const userName = z.string().check(z.regex(USER_NAME_RE));
const userList = z.array(z.union([userName, z.literal("*")]));

const passwordHash = z.pipe(
  z.string(),
  z.transform((text: string, ctx): PasswordHash => {
    const parsed = parsePasswordHash(text);
    if (typeof parsed === "string") {
      ctx.issues.push({ code: "custom", message: parsed, input: text });
      return z.NEVER;
    }
    return parsed;
  }),
);

const ruleSchema = z.strictObject({
  /** One pattern or several; see glob.ts. */
  repos: z.pipe(
    z.union([z.string(), z.array(z.string()).check(z.minLength(1))]),
    z.transform((r: string | string[]) => (typeof r === "string" ? [r] : r)),
  ),
  pull: z._default(userList, []),
  push: z._default(userList, []),
  delete: z._default(userList, []),
  anonymousPull: z._default(z.boolean(), false),
});

export const authConfigSchema = z
  .strictObject({
    users: z.record(userName, z.strictObject({ password: passwordHash })),
    rules: z._default(z.array(ruleSchema), []),
    admins: z._default(z.array(userName), []),
    /** Lifetime of access tokens; clients fetch a new one when it runs out. */
    tokenTtlSeconds: z._default(z.int().check(z.minimum(30), z.maximum(3600)), 300),
    /** Lifetime of refresh tokens (POST /token with access_type=offline). */
    refreshTokenTtlSeconds: z._default(z.int().check(z.minimum(60), z.maximum(90 * 24 * 3600)), 7 * 24 * 3600),
  })
  .check(
    z.superRefine((cfg, ctx) => {
      const known = (name: string) => name === "*" || Object.hasOwn(cfg.users, name);
      cfg.admins.forEach((name, i) => {
        if (!known(name)) ctx.addIssue({ code: "custom", path: ["admins", i], message: `unknown user "${name}"` });
      });
      cfg.rules.forEach((rule, r) => {
        for (const action of ["pull", "push", "delete"] as const) {
          rule[action].forEach((name, i) => {
            if (!known(name))
              ctx.addIssue({ code: "custom", path: ["rules", r, action, i], message: `unknown user "${name}"` });
          });
        }
        rule.repos.forEach((p, i) => {
          if (!PATTERN_RE.test(p)) {
            ctx.addIssue({
              code: "custom",
              path: ["rules", r, "repos", i],
              message: "patterns use a-z 0-9 . _ - / and *",
            });
          }
        });
      });
    }),
  );

export type AuthConfig = z.output<typeof authConfigSchema>;
export type Rule = AuthConfig["rules"][number];
