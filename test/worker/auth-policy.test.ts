/** The pieces under the token flow: patterns, rules, configuration checks and password hashes. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { authConfigSchema } from "../../worker/auth/config-schema.ts";
import { compileRepoPattern } from "../../worker/auth/glob.ts";
import { hashPassword, parsePasswordHash, verifyPassword, type PasswordHash } from "../../worker/auth/password.ts";
import { ANONYMOUS, Policy } from "../../worker/auth/policy.ts";
import { errorCodeOf, toB64Url, workerWith } from "./auth-support.ts";

describe("repository patterns", () => {
  it.each([
    ["team-a/*", "team-a/app", true],
    ["team-a/*", "team-a/app/dev", false],
    ["team-a/*", "team-a", false],
    ["team-a/*", "team-ab/app", false],
    ["public/**", "public/a/b/c", true],
    ["public/**", "public", false],
    ["**", "any/thing", true],
    ["team-*/app", "team-b/app", true],
    ["a.b/c", "aXb/c", false],
  ])("%s against %s: %s", (pattern, name, matches) => {
    expect(compileRepoPattern(pattern).test(name)).toBe(matches);
  });
});

describe("rules", () => {
  const hash = "pbkdf2-sha256$1$c2FsdHNhbHQ=$" + btoa(String.fromCharCode(...new Uint8Array(32)));
  const policy = new Policy(
    authConfigSchema.parse({
      users: { alice: { password: hash }, bob: { password: hash }, root: { password: hash } },
      admins: ["root"],
      rules: [
        { repos: "team-a/*", pull: ["bob"], push: ["alice"] },
        { repos: ["team-a/*", "shared/**"], delete: ["alice"], pull: ["*"] },
        { repos: "public/**", anonymousPull: true },
      ],
    }),
  );
  const alice = { kind: "user", name: "alice" } as const;
  const bob = { kind: "user", name: "bob" } as const;

  it("unions every matching rule; push and delete include pull", () => {
    expect([...policy.repositoryActions(alice, "team-a/x")].sort()).toEqual(["delete", "pull", "push"]);
    expect([...policy.repositoryActions(bob, "team-a/x")]).toEqual(["pull"]);
  });

  it("reads * as any signed-in user, never as anonymous", () => {
    expect([...policy.repositoryActions(bob, "shared/a/b")]).toEqual(["pull"]);
    expect([...policy.repositoryActions(ANONYMOUS, "shared/a/b")]).toEqual([]);
  });

  it("lets everyone pull where anonymousPull is set, and admins do everything", () => {
    expect([...policy.repositoryActions(ANONYMOUS, "public/x")]).toEqual(["pull"]);
    expect([...policy.repositoryActions({ kind: "user", name: "root" }, "anything/at/all")].sort()).toEqual([
      "delete",
      "pull",
      "push",
    ]);
  });

  it("grants the intersection of what is asked and what is allowed, expanding *", () => {
    expect(
      policy.grant(bob, [
        { type: "repository", name: "team-a/x", actions: ["*"] },
        { type: "repository", name: "secret/x", actions: ["pull"] },
        { type: "registry", name: "catalog", actions: ["*"] },
        { type: "registry", name: "admin", actions: ["*"] },
      ]),
    ).toEqual([
      { type: "repository", name: "team-a/x", actions: ["pull"] },
      { type: "registry", name: "catalog", actions: ["*"] },
    ]);
  });
});

describe("AUTH_CONFIG validation", () => {
  const hash = "pbkdf2-sha256$1000$c2FsdHNhbHQ=$" + btoa(String.fromCharCode(...new Uint8Array(32)));
  it.each([
    [
      "a rule naming an unknown user",
      { users: { a: { password: hash } }, rules: [{ repos: "x/*", push: ["b"] }] },
      'rules.0.push.0: unknown user "b"',
    ],
    ["an unknown admin", { users: {}, admins: ["root"] }, 'admins.0: unknown user "root"'],
    ["a misspelt rule key", { users: {}, rules: [{ repos: "x/*", anonymousPul: true }] }, "rules.0"],
    ["a pattern with other characters", { users: {}, rules: [{ repos: "X/[ab]" }] }, "rules.0.repos.0"],
    ["a hash in another format", { users: { a: { password: "$2b$10$abc" } } }, "users.a.password: must look like"],
    [
      "too many iterations for Workers",
      { users: { a: { password: hash.replace("$1000$", "$200000$") } } },
      "iterations must be 1..100000",
    ],
  ])("refuses %s, naming where", (_, config, message) => {
    const parsed = authConfigSchema.safeParse(config);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("\n")).toContain(message);
  });
});

describe("a misconfigured registry", () => {
  afterEach(() => vi.restoreAllMocks());
  const secretHash = "pbkdf2-sha256$1000$c2VjcmV0c2FsdA==$" + btoa("x".repeat(31));

  it.each([
    ["an unknown AUTH_MODE", { AUTH_MODE: "tokens" }, 'AUTH_MODE must be "none" or "token"'],
    ["token mode without AUTH_CONFIG", { AUTH_MODE: "token" }, "AUTH_CONFIG is not set"],
    [
      "AUTH_CONFIG that is not JSON",
      { AUTH_MODE: "token", AUTH_CONFIG: `{"users":{"a":{"password":"${secretHash}"}` },
      "AUTH_CONFIG is not valid JSON",
    ],
    [
      "an invalid AUTH_CONFIG",
      { AUTH_MODE: "token", AUTH_CONFIG: JSON.stringify({ users: { a: { password: secretHash } } }) },
      "users.a.password",
    ],
    [
      "a short signing key",
      { AUTH_MODE: "token", AUTH_CONFIG: "{}", TOKEN_SIGNING_KEY: "short" },
      "TOKEN_SIGNING_KEY must be set",
    ],
  ])("refuses every request with 503 for %s, and says why only in the log", async (_, vars, logged) => {
    const log = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const call = workerWith(vars);
    for (const path of ["/v2/", "/v2/public/x/manifests/latest", "/token"]) {
      const res = await call(path);
      expect(res.status).toBe(503);
      expect(await errorCodeOf(res)).toBe("UNAVAILABLE");
      expect(await res.text()).not.toContain(logged);
    }
    const lines = log.mock.calls.map((args) => args.join(" ")).join("\n");
    expect(lines).toContain(logged);
    expect(lines).not.toContain(secretHash.split("$")[3]!);
  });

  it("stays open with AUTH_MODE=none, where /token does not exist", async () => {
    const call = workerWith({ AUTH_MODE: "none" });
    expect((await call("/v2/")).status).toBe(200);
    expect((await call("/token")).status).toBe(404);
  });
});

describe("password hashes", () => {
  it("verifies the PBKDF2-HMAC-SHA256 test vector of RFC 7914 §11", async () => {
    // P="passwd", S="salt", c=1: the first 32 bytes of the published 64-byte output.
    const expected = "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc";
    const hash = Uint8Array.from(expected.match(/../g)!, (h) => parseInt(h, 16));
    // Built directly: the vector's 4-byte salt is shorter than stored hashes may have.
    const parsed: PasswordHash = { iterations: 1, salt: new TextEncoder().encode("salt"), hash };
    expect(await verifyPassword("passwd", parsed)).toBe(true);
    expect(await verifyPassword("passwd ", parsed)).toBe(false);
  });

  it("hashes with a fresh salt each time, at the Workers maximum by default", async () => {
    const a = await hashPassword("s3cret");
    const b = await hashPassword("s3cret");
    expect(a).toMatch(/^pbkdf2-sha256\$100000\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword("s3cret", parsePasswordHash(a) as PasswordHash)).toBe(true);
    expect(await verifyPassword("S3cret", parsePasswordHash(b) as PasswordHash)).toBe(false);
  });

  it("rejects salts and hashes of the wrong size", () => {
    expect(parsePasswordHash(`pbkdf2-sha256$10$${btoa("abc")}$${btoa("x".repeat(32))}`)).toMatch(/salt/);
    expect(parsePasswordHash(`pbkdf2-sha256$10$${btoa("saltsalt")}$${toB64Url(new Uint8Array(31))}`)).toMatch(/hash/);
  });
});
