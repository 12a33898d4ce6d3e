/**
 * The auth matrix: every actor against every action on three repositories, each answer checked
 * for its status, its OCI error code and, for 401, the challenge that tells the client which
 * token to fetch. The rules under test:
 *
 *   <run>/team-a/*    reader may pull; pusher may pull, push and delete
 *   <run>/public/**   anyone may pull, signed in or not
 *   <run>/secret/*    no rule: admins only
 *
 * Cells read `200`, `401 UNAUTHORIZED`, `401 UNAUTHORIZED (insufficient_scope)`, `403 DENIED`...
 * (a HEAD answer has no body, so no code).
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { anImage } from "../helpers/images/builder.ts";
import type { BuiltManifest } from "../helpers/images/types.ts";
import { randomBytes, digestOf } from "./helpers/bytes.ts";
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

const RUN = `authz${crypto.randomUUID().slice(0, 6)}`;
const TEAM = `${RUN}/team-a/app`;
const PUBLIC = `${RUN}/public/base`;
const SECRET = `${RUN}/secret/vault`;
const REPOS = [TEAM, PUBLIC, SECRET];
const PASSWORDS = { reader: "reader-pw", pusher: "pusher-pw", admin: "admin-pw" };

const open = workerWith({ AUTH_MODE: "none" });
let secured: Call;
const images = new Map<string, BuiltManifest>();
let serial = 0;

// ---- the actions ---------------------------------------------------------------------------

type Need = "pull" | "push" | "delete";

interface Action {
  name: string;
  needs: Need;
  /** The status when allowed. */
  ok: number;
  /** The request, after preparing whatever state it acts on through the open Worker. */
  request(repo: string): Promise<[string, RequestInit]>;
}

const ACTIONS: Action[] = [
  {
    name: "GET manifest",
    needs: "pull",
    ok: 200,
    request: async (r) => [`/v2/${r}/manifests/v1`, { headers: accept(r) }],
  },
  {
    name: "HEAD manifest",
    needs: "pull",
    ok: 200,
    request: async (r) => [`/v2/${r}/manifests/v1`, { method: "HEAD", headers: accept(r) }],
  },
  { name: "GET blob", needs: "pull", ok: 200, request: async (r) => [`/v2/${r}/blobs/${layerOf(r)}`, {}] },
  { name: "list tags", needs: "pull", ok: 200, request: async (r) => [`/v2/${r}/tags/list`, {}] },
  {
    name: "POST upload",
    needs: "push",
    ok: 202,
    request: async (r) => [`/v2/${r}/blobs/uploads/`, { method: "POST" }],
  },
  {
    name: "PATCH upload",
    needs: "push",
    ok: 202,
    request: async (r) => [await openSession(r), { method: "PATCH", body: randomBytes(100), headers: octets }],
  },
  {
    name: "PUT upload",
    needs: "push",
    ok: 201,
    request: async (r) => {
      const bytes = randomBytes(100);
      return [
        `${await openSession(r)}?digest=${await digestOf(bytes)}`,
        { method: "PUT", body: bytes, headers: octets },
      ];
    },
  },
  {
    name: "PUT manifest",
    needs: "push",
    ok: 201,
    request: async (r) => [
      `/v2/${r}/manifests/pushed-${serial++}`,
      { method: "PUT", body: imageOf(r).bytes, headers: { "Content-Type": imageOf(r).mediaType } },
    ],
  },
  {
    name: "DELETE manifest",
    needs: "delete",
    ok: 202,
    request: async (r) => {
      const tag = `doomed-${serial++}`;
      await expectOk(
        open(`/v2/${r}/manifests/${tag}`, {
          method: "PUT",
          body: imageOf(r).bytes,
          headers: { "Content-Type": imageOf(r).mediaType },
        }),
      );
      return [`/v2/${r}/manifests/${tag}`, { method: "DELETE" }];
    },
  },
  {
    name: "DELETE blob",
    needs: "delete",
    ok: 202,
    request: async (r) => [`/v2/${r}/blobs/${await pushBlob(r, randomBytes(64))}`, { method: "DELETE" }],
  },
];

// ---- the matrix ----------------------------------------------------------------------------

const OK = "ok";
const U = "401 UNAUTHORIZED";
const BAD_TOKEN = "401 UNAUTHORIZED (invalid_token)";
const NEEDS_SCOPE = "401 UNAUTHORIZED (insufficient_scope)";
const D = "403 DENIED";
type Outcome = typeof OK | typeof U | typeof BAD_TOKEN | typeof NEEDS_SCOPE | typeof D;

/** Outcomes of one actor on one repository: its pull actions, its push actions, its deletes. */
function row(pull: Outcome, push: Outcome, del: Outcome): Record<Need, Outcome> {
  return { pull, push, delete: del };
}

interface ActorRow {
  actor: string;
  /** The Authorization header, once the tokens exist; undefined sends none. */
  authorization: () => string | undefined;
  repos: Record<string, Record<Need, Outcome>>;
  /** What GET /v2/ answers. */
  base: Outcome;
  /** The repositories the catalog lists (exactly, or at least these for an admin), or a refusal. */
  catalog: string[] | { atLeast: string[] } | Outcome;
}

const tokens: Record<string, string> = {};

const MATRIX: ActorRow[] = [
  {
    actor: "anonymous",
    authorization: () => undefined,
    repos: { [TEAM]: row(U, U, U), [PUBLIC]: row(OK, U, U), [SECRET]: row(U, U, U) },
    base: U,
    catalog: [PUBLIC],
  },
  {
    actor: "anonymous, empty Authorization header",
    authorization: () => "",
    repos: { [TEAM]: row(U, U, U), [PUBLIC]: row(OK, U, U), [SECRET]: row(U, U, U) },
    base: U,
    catalog: [PUBLIC],
  },
  {
    actor: "pull-only user (token)",
    authorization: () => bearer(tokens.reader!),
    repos: { [TEAM]: row(OK, D, D), [PUBLIC]: row(OK, D, D), [SECRET]: row(D, D, D) },
    base: OK,
    catalog: [PUBLIC, TEAM],
  },
  {
    actor: "push user scoped to team-a/* (token)",
    authorization: () => bearer(tokens.pusher!),
    repos: { [TEAM]: row(OK, OK, OK), [PUBLIC]: row(OK, D, D), [SECRET]: row(D, D, D) },
    base: OK,
    catalog: [PUBLIC, TEAM],
  },
  {
    actor: "push user scoped to team-a/* (Basic straight to /v2/)",
    authorization: () => basic("pusher", PASSWORDS.pusher),
    repos: { [TEAM]: row(OK, OK, OK), [PUBLIC]: row(OK, D, D), [SECRET]: row(D, D, D) },
    base: OK,
    catalog: [PUBLIC, TEAM],
  },
  {
    actor: "admin (token)",
    authorization: () => bearer(tokens.admin!),
    repos: { [TEAM]: row(OK, OK, OK), [PUBLIC]: row(OK, OK, OK), [SECRET]: row(OK, OK, OK) },
    base: OK,
    catalog: { atLeast: [PUBLIC, SECRET, TEAM] },
  },
  {
    actor: "expired admin token",
    authorization: () => bearer(tokens.expired!),
    repos: {
      [TEAM]: row(BAD_TOKEN, BAD_TOKEN, BAD_TOKEN),
      [PUBLIC]: row(BAD_TOKEN, BAD_TOKEN, BAD_TOKEN),
      [SECRET]: row(BAD_TOKEN, BAD_TOKEN, BAD_TOKEN),
    },
    base: BAD_TOKEN,
    catalog: BAD_TOKEN,
  },
  {
    actor: "tampered token (reader's signature on admin's claims)",
    authorization: () => bearer(tokens.tampered!),
    repos: {
      [TEAM]: row(BAD_TOKEN, BAD_TOKEN, BAD_TOKEN),
      [PUBLIC]: row(BAD_TOKEN, BAD_TOKEN, BAD_TOKEN),
      [SECRET]: row(BAD_TOKEN, BAD_TOKEN, BAD_TOKEN),
    },
    base: BAD_TOKEN,
    catalog: BAD_TOKEN,
  },
  {
    actor: "pusher's token for another repository (team-a/other)",
    authorization: () => bearer(tokens.otherRepo!),
    // Where the rules would grant the scope, the client is told to fetch a token for it.
    repos: {
      [TEAM]: row(NEEDS_SCOPE, NEEDS_SCOPE, NEEDS_SCOPE),
      [PUBLIC]: row(NEEDS_SCOPE, D, D),
      [SECRET]: row(D, D, D),
    },
    base: OK,
    catalog: NEEDS_SCOPE,
  },
];

// ---- setup ---------------------------------------------------------------------------------

beforeAll(async () => {
  secured = workerWith({
    AUTH_MODE: "token",
    AUTH_CONFIG: JSON.stringify({
      users: await usersWithPasswords(PASSWORDS),
      admins: ["admin"],
      rules: [
        { repos: `${RUN}/team-a/*`, pull: ["reader"], push: ["pusher"], delete: ["pusher"] },
        { repos: `${RUN}/public/**`, anonymousPull: true },
      ],
    }),
  });
  for (const repo of REPOS) {
    const image = await anImage().randomLayers(1).build();
    for (const b of image.blobs) await pushBlob(repo, b.bytes);
    await expectOk(
      open(`/v2/${repo}/manifests/v1`, {
        method: "PUT",
        body: image.bytes,
        headers: { "Content-Type": image.mediaType },
      }),
    );
    images.set(repo, image);
  }
  const everything = [...REPOS.map((r) => `repository:${r}:pull,push,delete`), "registry:catalog:*"];
  for (const user of ["reader", "pusher", "admin"] as const) {
    tokens[user] = (await fetchToken(secured, everything, basic(user, PASSWORDS[user]))).token;
  }
  const key = env.TOKEN_SIGNING_KEY!;
  const now = Math.floor(Date.now() / 1000);
  tokens.expired = await signHs256(
    { ...claimsOf(tokens.admin!), iat: now - 3600, nbf: now - 3600, exp: now - 3300 },
    key,
  );
  const [header, , readerSignature] = tokens.reader!.split(".");
  tokens.tampered = [header, tokens.admin!.split(".")[1], readerSignature].join(".");
  tokens.otherRepo = (
    await fetchToken(secured, [`repository:${RUN}/team-a/other:pull,push,delete`], basic("pusher", PASSWORDS.pusher))
  ).token;
});

// ---- the tests -----------------------------------------------------------------------------

describe.each(MATRIX)("$actor", (a) => {
  it.each(REPOS)("on %s: every action answers as the matrix says", async (repo) => {
    const expected: Record<string, string> = {};
    const actual: Record<string, string> = {};
    for (const action of ACTIONS) {
      const outcome = a.repos[repo]![action.needs];
      const [path, init] = await action.request(repo);
      const res = await secured(path, withAuthorization(init, a.authorization()));
      expected[action.name] = cell(outcome, action.ok, init.method);
      actual[action.name] = await describeAnswer(res, init.method);
      if (res.status === 401) expectChallenge(res, `repository:${repo}:${scopeActions(action.needs)}`);
    }
    expect(actual).toEqual(expected);
  });

  it("GET /v2/ answers as the matrix says", async () => {
    const res = await secured("/v2/", withAuthorization({}, a.authorization()));
    expect(await describeAnswer(res)).toBe(cell(a.base, 200));
    if (res.status === 401) expectChallenge(res, undefined);
  });

  it("the catalog lists only what the actor may pull", async () => {
    const res = await secured("/v2/_catalog", withAuthorization({}, a.authorization()));
    if (typeof a.catalog === "string") {
      expect(await describeAnswer(res)).toBe(cell(a.catalog, 200));
      if (res.status === 401) expectChallenge(res, "registry:catalog:*");
      return;
    }
    expect(res.status).toBe(200);
    const { repositories } = (await res.json()) as { repositories: string[] };
    if (Array.isArray(a.catalog)) expect(repositories).toEqual(a.catalog);
    else expect(repositories).toEqual(expect.arrayContaining(a.catalog.atLeast));
  });
});

// ---- helpers -------------------------------------------------------------------------------

const octets = { "Content-Type": "application/octet-stream" };

function imageOf(repo: string): BuiltManifest {
  return images.get(repo)!;
}

function layerOf(repo: string): string {
  return imageOf(repo).blobs[1]!.descriptor.digest;
}

function accept(repo: string): Record<string, string> {
  return { Accept: imageOf(repo).mediaType };
}

async function pushBlob(repo: string, bytes: Uint8Array): Promise<string> {
  const digest = await digestOf(bytes);
  await expectOk(open(`/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: "POST", body: bytes, headers: octets }));
  return digest;
}

async function openSession(repo: string): Promise<string> {
  const res = await expectOk(open(`/v2/${repo}/blobs/uploads/`, { method: "POST" }));
  return res.headers.get("Location")!;
}

async function expectOk(pending: Promise<Response>): Promise<Response> {
  const res = await pending;
  if (res.status >= 300) throw new Error(`setup request failed: ${res.status} ${await res.text()}`);
  return res;
}

function withAuthorization(init: RequestInit, authorization: string | undefined): RequestInit {
  if (authorization === undefined) return init;
  return {
    ...init,
    headers: { ...(init.headers as Record<string, string> | undefined), Authorization: authorization },
  };
}

function scopeActions(need: Need): string {
  return need === "push" ? "pull,push" : need;
}

/** The expected cell: the success status, or the refusal (a HEAD refusal has no body to carry a code). */
function cell(outcome: Outcome, ok: number, method?: string): string {
  if (outcome === OK) return String(ok);
  return method === "HEAD" ? outcome.replace(/ [A-Z]+/, "") : outcome;
}

async function describeAnswer(res: Response, method?: string): Promise<string> {
  if (res.status < 400) {
    await res.body?.cancel();
    return String(res.status);
  }
  const code = method === "HEAD" ? undefined : await errorCodeOf(res);
  const error = challengeOf(res)?.error;
  return [String(res.status), code, error && `(${error})`].filter(Boolean).join(" ");
}

/** A 401 always names where to get a token, for which service, and (except for /v2/) which scope. */
function expectChallenge(res: Response, scope: string | undefined): void {
  const challenge = challengeOf(res);
  expect(challenge?.realm).toBe("http://registry.test/token");
  expect(challenge?.service).toBe("registry.test");
  expect(challenge?.scope).toBe(scope);
}
