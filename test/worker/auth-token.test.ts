/**
 * The token endpoint and the edges of the token flow: what a token grants, the OAuth2 form with
 * refresh tokens, the challenge each kind of request gets, cross-repository mounts, tokens used
 * where they do not belong, and what never appears in an answer.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { digestOf, randomBytes } from "./helpers/bytes.ts";
import {
  basic,
  bearer,
  challengeOf,
  claimsOf,
  errorCodeOf,
  fetchToken,
  signHs256,
  usersWithPasswords,
  workerWith,
  type Call,
} from "./auth-support.ts";

const RUN = `authtok${crypto.randomUUID().slice(0, 6)}`;
const TEAM = `${RUN}/team-a/app`;
const PUBLIC = `${RUN}/public/base`;
const SECRET = `${RUN}/secret/vault`;
const PASSWORDS = { reader: "reader-pw", pusher: "pusher-pw", admin: "admin-pw" };

const open = workerWith({ AUTH_MODE: "none" });
let config: Record<string, unknown>;
let secured: Call;
let blob: { bytes: Uint8Array; digest: string };

beforeAll(async () => {
  config = {
    users: await usersWithPasswords(PASSWORDS),
    admins: ["admin"],
    rules: [
      { repos: `${RUN}/team-a/*`, pull: ["reader"], push: ["pusher"] },
      { repos: `${RUN}/public/**`, anonymousPull: true },
    ],
  };
  secured = workerWith({ AUTH_MODE: "token", AUTH_CONFIG: JSON.stringify(config) });
  const bytes = randomBytes(256);
  blob = { bytes, digest: await digestOf(bytes) };
  for (const repo of [PUBLIC, SECRET]) {
    const res = await open(`/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, { method: "POST", body: bytes });
    expect(res.status).toBe(201);
  }
});

describe("GET /token", () => {
  it("grants the requested scopes cut down to what the rules allow", async () => {
    const answer = await fetchToken(
      secured,
      [`repository:${TEAM}:pull,push,delete`, `repository:${SECRET}:pull`, "registry:catalog:*"],
      basic("pusher", PASSWORDS.pusher),
    );
    expect(answer.access_token).toBe(answer.token);
    expect(answer.expires_in).toBe(300);
    const claims = claimsOf(answer.token);
    expect(claims).toMatchObject({ iss: "2dfs-edge-registry", sub: "pusher", aud: "registry.test" });
    expect(claims.access).toEqual([
      { type: "repository", name: TEAM, actions: ["pull", "push"] },
      { type: "registry", name: "catalog", actions: ["*"] },
    ]);
    expect((claims.exp as number) - (claims.iat as number)).toBe(300);
    expect(new Date(answer.issued_at).getTime()).toBe((claims.iat as number) * 1000);
  });

  it("gives anonymous callers pull where anonymousPull allows it, and nothing else", async () => {
    const answer = await fetchToken(secured, [`repository:${PUBLIC}:pull,push`, `repository:${TEAM}:pull`]);
    expect(claimsOf(answer.token)).toMatchObject({
      sub: "",
      access: [{ type: "repository", name: PUBLIC, actions: ["pull"] }],
    });
  });

  it("accepts several scopes in one parameter, space-separated, and merges repeats", async () => {
    const answer = await fetchToken(
      secured,
      [`repository:${TEAM}:pull repository:${TEAM}:push`],
      basic("pusher", PASSWORDS.pusher),
    );
    expect(claimsOf(answer.token).access).toEqual([{ type: "repository", name: TEAM, actions: ["pull", "push"] }]);
  });

  it.each([
    ["a wrong password", basic("pusher", "nope")],
    ["an unknown user", basic("mallory", "pusher-pw")],
    ["an unknown scheme", "Digest username=pusher"],
  ])("refuses %s with 401 and no token", async (_, authorization) => {
    const res = await secured(`/token?scope=repository:${TEAM}:pull`, { headers: { Authorization: authorization } });
    expect(res.status).toBe(401);
    expect(await errorCodeOf(res)).toBe("UNAUTHORIZED");
    const body = await res.text();
    expect(body).not.toMatch(/token"|pusher-pw|nope/);
  });

  it("issues a token that works, and the same claims signed by anyone else's key do not", async () => {
    const token = (await fetchToken(secured, [`repository:${TEAM}:pull`], basic("reader", PASSWORDS.reader))).token;
    const get = (t: string) => secured(`/v2/${TEAM}/tags/list`, { headers: { Authorization: bearer(t) } });
    // The repository does not exist yet: a 404 means the token was accepted.
    expect(await errorCodeOf(await get(token))).toBe("NAME_UNKNOWN");
    // The same claims signed again with the registry's key are accepted too: the signer below is sound...
    expect(await errorCodeOf(await get(await signHs256(claimsOf(token), env.TOKEN_SIGNING_KEY!)))).toBe("NAME_UNKNOWN");
    // ...and with any other key they are not.
    const forged = await get(await signHs256(claimsOf(token), "another-key-of-32-characters-xxxxx"));
    expect(forged.status).toBe(401);
    expect(challengeOf(forged)?.error).toBe("invalid_token");
  });

  it("refuses a token for another service (audience)", async () => {
    const token = (await fetchToken(secured, [`repository:${PUBLIC}:pull`], basic("admin", PASSWORDS.admin))).token;
    const res = await secured(`http://elsewhere.test/v2/${PUBLIC}/blobs/${blob.digest}`, {
      headers: { Authorization: bearer(token) },
    });
    expect(res.status).toBe(401);
    expect(challengeOf(res)).toMatchObject({ error: "invalid_token", service: "elsewhere.test" });
  });

  it("refuses a token whose header names another algorithm", async () => {
    const token = (await fetchToken(secured, [`repository:${PUBLIC}:pull`], basic("admin", PASSWORDS.admin))).token;
    const [, payload] = token.split(".");
    const none = `${btoa(JSON.stringify({ alg: "none", typ: "JWT" })).replace(/=+$/, "")}.${payload}.`;
    const res = await secured(`/v2/${PUBLIC}/blobs/${blob.digest}`, { headers: { Authorization: bearer(none) } });
    expect(res.status).toBe(401);
  });
});

describe("POST /token (OAuth2 form)", () => {
  const form = (fields: Record<string, string>) => ({
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
  });

  it("issues an access token and, with access_type=offline, a refresh token that issues more", async () => {
    const res = await secured(
      "/token",
      form({
        grant_type: "password",
        username: "pusher",
        password: PASSWORDS.pusher,
        service: "registry.test",
        scope: `repository:${TEAM}:pull,push`,
        client_id: "test",
        access_type: "offline",
      }),
    );
    expect(res.status).toBe(200);
    const answer = (await res.json()) as { access_token: string; refresh_token: string; scope: string };
    expect(answer.scope).toBe(`repository:${TEAM}:pull,push`);
    expect(claimsOf(answer.access_token).sub).toBe("pusher");

    const refreshed = await secured(
      "/token",
      form({ grant_type: "refresh_token", refresh_token: answer.refresh_token, scope: `repository:${TEAM}:pull` }),
    );
    expect(refreshed.status).toBe(200);
    const again = (await refreshed.json()) as { access_token: string; refresh_token?: string };
    expect(claimsOf(again.access_token)).toMatchObject({
      sub: "pusher",
      access: [{ type: "repository", name: TEAM, actions: ["pull"] }],
    });
    expect(again.refresh_token).toBeUndefined();

    // A refresh token is not an access token, and the other way round.
    const asBearer = await secured(`/v2/${TEAM}/tags/list`, {
      headers: { Authorization: bearer(answer.refresh_token) },
    });
    expect(asBearer.status).toBe(401);
    const asRefresh = await secured(
      "/token",
      form({ grant_type: "refresh_token", refresh_token: answer.access_token }),
    );
    expect(asRefresh.status).toBe(401);
    expect(await asRefresh.json()).toMatchObject({ error: "invalid_grant" });
  });

  it("ends refresh tokens when the user's password changes", async () => {
    const res = await secured(
      "/token",
      form({ grant_type: "password", username: "reader", password: PASSWORDS.reader, access_type: "offline" }),
    );
    const { refresh_token } = (await res.json()) as { refresh_token: string };
    const changed = workerWith({
      AUTH_MODE: "token",
      AUTH_CONFIG: JSON.stringify({
        ...config,
        users: { ...(config.users as object), ...(await usersWithPasswords({ reader: "new-pw" })) },
      }),
    });
    const refused = await changed("/token", form({ grant_type: "refresh_token", refresh_token }));
    expect(refused.status).toBe(401);
  });

  it.each([
    ["a wrong password", { grant_type: "password", username: "pusher", password: "nope" }, 401, "invalid_grant"],
    ["no username", { grant_type: "password", password: "x" }, 400, "invalid_request"],
    ["an unknown grant type", { grant_type: "client_credentials" }, 400, "unsupported_grant_type"],
  ])("answers %s with an OAuth2 error", async (_, fields, status, error) => {
    const res = await secured("/token", form(fields as Record<string, string>));
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject({ error });
  });
});

describe("challenges", () => {
  const zero = `sha256:${"0".repeat(64)}`;
  it.each([
    ["a manifest GET", "GET", `/v2/${TEAM}/manifests/latest`, `repository:${TEAM}:pull`],
    ["a blob HEAD", "HEAD", `/v2/${TEAM}/blobs/${zero}`, `repository:${TEAM}:pull`],
    ["an upload", "POST", `/v2/${TEAM}/blobs/uploads/`, `repository:${TEAM}:pull,push`],
    ["a manifest PUT", "PUT", `/v2/${TEAM}/manifests/latest`, `repository:${TEAM}:pull,push`],
    ["a manifest DELETE", "DELETE", `/v2/${TEAM}/manifests/latest`, `repository:${TEAM}:delete`],
    ["a referrers GET", "GET", `/v2/${TEAM}/referrers/${zero}`, `repository:${TEAM}:pull`],
  ])("an anonymous %s is asked for the scope it needs", async (_, method, path, scope) => {
    const res = await secured(path, { method });
    expect(res.status).toBe(401);
    expect(res.headers.get("WWW-Authenticate")).toBe(
      `Bearer realm="http://registry.test/token",service="registry.test",scope="${scope}"`,
    );
  });

  it("reads the repository name as the router does: a confusing path is judged by its real name", async () => {
    // The blob route serves repository `<team>/manifests/x` here; the pusher's team-a/* rule does not cover it.
    const res = await secured(`/v2/${TEAM}/manifests/x/blobs/${blob.digest}`, {
      headers: { Authorization: basic("pusher", PASSWORDS.pusher) },
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({
      errors: [{ code: "DENIED", detail: [{ type: "repository", name: `${TEAM}/manifests/x`, action: "pull" }] }],
    });
  });

  it("refuses an invalid repository name before deciding anything about it", async () => {
    const res = await secured("/v2/Team/App/tags/list");
    expect(res.status).toBe(400);
    expect(await errorCodeOf(res)).toBe("NAME_INVALID");
  });

  it("keeps paths outside the OCI API for admins", async () => {
    expect((await secured("/elsewhere")).status).toBe(401);
    expect(
      (await secured("/elsewhere", { headers: { Authorization: basic("pusher", PASSWORDS.pusher) } })).status,
    ).toBe(403);
    expect((await secured("/elsewhere", { headers: { Authorization: basic("admin", PASSWORDS.admin) } })).status).toBe(
      404,
    );
  });

  it("never echoes credentials or tokens in an answer", async () => {
    const token = (await fetchToken(secured, [`repository:${PUBLIC}:pull`], basic("reader", PASSWORDS.reader))).token;
    const tampered = `${token.slice(0, -4)}AAAA`;
    for (const authorization of [bearer(tampered), basic("reader", "secret-guess")]) {
      const res = await secured(`/v2/${TEAM}/manifests/latest`, { headers: { Authorization: authorization } });
      expect(res.status).toBe(401);
      const everything = `${[...res.headers].join("\n")}\n${await res.text()}`;
      expect(everything).not.toContain(tampered.slice(0, 40));
      expect(everything).not.toContain("secret-guess");
    }
  });
});

describe("cross-repository mount", () => {
  const mount = (from: string | undefined, authorization: string) =>
    secured(`/v2/${TEAM}/blobs/uploads/?mount=${blob.digest}${from ? `&from=${from}` : ""}`, {
      method: "POST",
      headers: { Authorization: authorization },
    });

  it("mounts from a repository the token may pull", async () => {
    const token = (
      await fetchToken(
        secured,
        [`repository:${TEAM}:pull,push`, `repository:${PUBLIC}:pull`],
        basic("pusher", PASSWORDS.pusher),
      )
    ).token;
    const res = await mount(PUBLIC, bearer(token));
    expect(res.status).toBe(201);
    expect(res.headers.get("Docker-Content-Digest")).toBe(blob.digest);
  });

  it("falls back to an upload session when the source may not be pulled, revealing nothing", async () => {
    const token = (
      await fetchToken(
        secured,
        [`repository:${TEAM}:pull,push`, `repository:${SECRET}:pull`],
        basic("pusher", PASSWORDS.pusher),
      )
    ).token;
    const before = await secured(`/v2/${TEAM}/blobs/uploads/?mount=sha256:${"1".repeat(64)}&from=${SECRET}`, {
      method: "POST",
      headers: { Authorization: bearer(token) },
    });
    expect(before.status).toBe(202);
    const res = await mount(SECRET, bearer(token));
    expect(res.status).toBe(202);
    expect(res.headers.get("Location")).toMatch(/\/blobs\/uploads\//);
  });

  it("mounts by digest alone (no from) only for admins", async () => {
    expect((await mount(undefined, basic("pusher", PASSWORDS.pusher))).status).toBe(202);
    expect((await mount(undefined, basic("admin", PASSWORDS.admin))).status).toBe(201);
  });
});

describe("catalog paging for a filtered caller", () => {
  it("pages through only the visible repositories", async () => {
    const names = ["a", "b", "c"].map((x) => `${RUN}/public/p${x}`);
    for (const repo of [...names, `${RUN}/secret/between`]) {
      const res = await open(`/v2/${repo}/blobs/uploads/?digest=${blob.digest}`, { method: "POST", body: blob.bytes });
      expect(res.status).toBe(201);
    }
    const seen: string[] = [];
    let next: string | undefined = "/v2/_catalog?n=1";
    while (next) {
      const res = await secured(next);
      expect(res.status).toBe(200);
      seen.push(...((await res.json()) as { repositories: string[] }).repositories);
      next = /<([^>]+)>; rel="next"/.exec(res.headers.get("Link") ?? "")?.[1];
    }
    expect(seen).toEqual([PUBLIC, ...names].sort());
  });
});
