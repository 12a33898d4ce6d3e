/**
 * Secure by default: token auth is what an unset AUTH_MODE means, and token auth whose secrets
 * (AUTH_CONFIG, TOKEN_SIGNING_KEY) or rate limiter are missing or unusable refuses every request
 * with 503 UNAVAILABLE (OCI error JSON, never a 500, never open), saying why once in the Worker
 * log. What a refused write would have changed is checked through the open Worker on the same
 * storage.
 */
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { anImage } from "../helpers/images/builder.ts";
import type { BuiltManifest } from "../helpers/images/types.ts";
import { digestOf, randomBytes } from "./helpers/bytes.ts";
import { basic, errorCodeOf, usersWithPasswords, workerWith, type Call } from "./auth-support.ts";

const RUN = `closed${crypto.randomUUID().slice(0, 6)}`;
const REPO = `${RUN}/team-a/app`;
const SIGNING_KEY = "fail-closed-signing-key-0123456789abcdef";

const open = workerWith({ AUTH_MODE: "none" });
let image: BuiltManifest;
let config: string;

/** As `wrangler deploy` ships wrangler.toml before any `wrangler secret put`. */
const NO_SECRETS = { AUTH_MODE: "token", AUTH_CONFIG: undefined, TOKEN_SIGNING_KEY: undefined };

beforeAll(async () => {
  image = await anImage().randomLayers(1).build();
  for (const b of image.blobs) {
    const res = await open(`/v2/${REPO}/blobs/uploads/?digest=${b.descriptor.digest}`, {
      method: "POST",
      body: b.bytes,
    });
    expect(res.status).toBe(201);
  }
  const put = await open(`/v2/${REPO}/manifests/v1`, {
    method: "PUT",
    body: image.bytes,
    headers: { "Content-Type": image.mediaType },
  });
  expect(put.status).toBe(201);
  config = JSON.stringify({
    users: await usersWithPasswords({ alice: "alice-password" }),
    rules: [{ repos: `${RUN}/team-a/*`, push: ["alice"], delete: ["alice"] }],
  });
});

afterEach(() => vi.restoreAllMocks());

/** Every kind of request a client makes, anonymous or with a password. */
function requests(): [string, string, RequestInit][] {
  const layer = image.blobs[1]!.descriptor.digest;
  const manifest = { method: "PUT", body: image.bytes, headers: { "Content-Type": image.mediaType } };
  return [
    ["GET /v2/", "/v2/", {}],
    ["GET manifest", `/v2/${REPO}/manifests/v1`, { headers: { Accept: image.mediaType } }],
    ["GET blob", `/v2/${REPO}/blobs/${layer}`, {}],
    ["POST upload", `/v2/${REPO}/blobs/uploads/`, { method: "POST" }],
    ["PUT manifest", `/v2/${REPO}/manifests/v2`, manifest],
    ["DELETE manifest", `/v2/${REPO}/manifests/v1`, { method: "DELETE" }],
    ["DELETE blob", `/v2/${REPO}/blobs/${layer}`, { method: "DELETE" }],
    ["catalog", "/v2/_catalog", {}],
    ["GET /token", "/token?service=registry.test", {}],
    ["POST /token", "/token", { method: "POST", body: "grant_type=password&username=alice&password=x" }],
    ["GC", "/admin/gc", { method: "POST" }],
    ["Basic PUT manifest", `/v2/${REPO}/manifests/v3`, withBasic(manifest)],
  ];
}

function withBasic(init: RequestInit): RequestInit {
  return { ...init, headers: { ...(init.headers as Record<string, string>), Authorization: basic("alice", "x") } };
}

async function expectRefusedEverywhere(call: Call): Promise<void> {
  const answers: Record<string, string> = {};
  for (const [name, path, init] of requests()) {
    const res = await call(path, init);
    const type = res.headers.get("Content-Type");
    answers[name] = `${res.status} ${await errorCodeOf(res)} ${type}`;
  }
  const expected = Object.fromEntries(requests().map(([name]) => [name, "503 UNAVAILABLE application/json"]));
  expect(answers).toEqual(expected);
}

/** Nothing the refused requests asked for happened. */
async function expectStorageUntouched(): Promise<void> {
  const v1 = await open(`/v2/${REPO}/manifests/v1`, { method: "HEAD", headers: { Accept: image.mediaType } });
  expect(v1.status).toBe(200);
  for (const tag of ["v2", "v3"]) {
    const res = await open(`/v2/${REPO}/manifests/${tag}`, { method: "HEAD", headers: { Accept: image.mediaType } });
    expect(res.status).toBe(404);
  }
  const layer = await open(`/v2/${REPO}/blobs/${image.blobs[1]!.descriptor.digest}`, { method: "HEAD" });
  expect(layer.status).toBe(200);
}

/** The Worker log lines written while `run` ran. */
async function logged(run: () => Promise<void>): Promise<string[]> {
  const log = vi.spyOn(console, "error").mockImplementation(() => undefined);
  await run();
  return log.mock.calls.map((args) => args.map(String).join(" "));
}

describe("token auth without its secrets, as a first deploy ships", () => {
  it.each([
    ["AUTH_MODE=token", NO_SECRETS],
    ["AUTH_MODE unset", { ...NO_SECRETS, AUTH_MODE: undefined }],
    ["AUTH_MODE empty", { ...NO_SECRETS, AUTH_MODE: "" }],
  ])("%s: every request answers 503 UNAVAILABLE and nothing is stored or deleted", async (_, vars) => {
    const lines = await logged(() => expectRefusedEverywhere(workerWith(vars)));
    expect(lines.join("\n")).toContain("AUTH_CONFIG and TOKEN_SIGNING_KEY are not set");
    await expectStorageUntouched();
  });

  it("says why in the Worker log once, not once per request, and never in the answer", async () => {
    // Another configuration first, so that this one is read afresh.
    await open("/v2/");
    const call = workerWith(NO_SECRETS);
    const lines = await logged(async () => {
      for (let i = 0; i < 5; i++) {
        const res = await call(`/v2/${REPO}/manifests/v1`, { method: "DELETE" });
        expect(res.status).toBe(503);
        const body = await res.text();
        expect(body).not.toContain("AUTH_CONFIG");
        expect(JSON.parse(body)).toEqual({
          errors: [{ code: "UNAVAILABLE", message: expect.stringContaining("not configured") }],
        });
      }
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^auth configuration refused: AUTH_MODE is "token" but AUTH_CONFIG and TOKEN_SIGNING_KEY/);
    await expectStorageUntouched();
  });
});

describe("token auth with one part missing or unusable", () => {
  it.each([
    [
      "no TOKEN_SIGNING_KEY",
      () => ({ AUTH_MODE: "token", AUTH_CONFIG: config, TOKEN_SIGNING_KEY: undefined }),
      "TOKEN_SIGNING_KEY is not set",
    ],
    [
      "no AUTH_CONFIG",
      () => ({ AUTH_MODE: "token", AUTH_CONFIG: undefined, TOKEN_SIGNING_KEY: SIGNING_KEY }),
      "AUTH_CONFIG is not set",
    ],
    [
      "an empty AUTH_CONFIG",
      () => ({ AUTH_MODE: "token", AUTH_CONFIG: "", TOKEN_SIGNING_KEY: SIGNING_KEY }),
      "AUTH_CONFIG is not set",
    ],
    [
      "a short TOKEN_SIGNING_KEY",
      () => ({ AUTH_MODE: "token", AUTH_CONFIG: config, TOKEN_SIGNING_KEY: "short" }),
      "TOKEN_SIGNING_KEY must be set to at least 32 characters",
    ],
    [
      "no LOGIN_LIMITER binding",
      () => ({ AUTH_MODE: "token", AUTH_CONFIG: config, TOKEN_SIGNING_KEY: SIGNING_KEY, LOGIN_LIMITER: undefined }),
      "LOGIN_LIMITER is not bound",
    ],
  ])("%s: 503 everywhere, the log names what is wrong and no value", async (_, vars, reason) => {
    const lines = await logged(() => expectRefusedEverywhere(workerWith(vars())));
    const text = lines.join("\n");
    expect(text).toContain(reason);
    expect(text).not.toContain(SIGNING_KEY);
    expect(text).not.toContain("pbkdf2-sha256$");
    await expectStorageUntouched();
  });

  it("an AUTH_MODE left unset with its secrets set is token auth, not open", async () => {
    const call = workerWith({ AUTH_MODE: undefined, AUTH_CONFIG: config, TOKEN_SIGNING_KEY: SIGNING_KEY });
    const bytes = randomBytes(64);
    const push = await call(`/v2/${REPO}/blobs/uploads/?digest=${await digestOf(bytes)}`, {
      method: "POST",
      body: bytes,
    });
    expect(push.status).toBe(401);
    expect(await errorCodeOf(push)).toBe("UNAUTHORIZED");
    const asAlice = await call(`/v2/${REPO}/blobs/uploads/?digest=${await digestOf(bytes)}`, {
      method: "POST",
      body: bytes,
      headers: { Authorization: basic("alice", "alice-password") },
    });
    expect(asAlice.status).toBe(201);
  });

  it("a rate limiter that fails refuses sign-in with 503 rather than checking passwords unthrottled", async () => {
    // Stands in for Cloudflare's hosted rate limiting service being unreachable.
    const broken: RateLimit = { limit: () => Promise.reject(new Error("rate limiting service unreachable")) };
    const call = workerWith({
      AUTH_MODE: "token",
      AUTH_CONFIG: config,
      TOKEN_SIGNING_KEY: SIGNING_KEY,
      LOGIN_LIMITER: broken,
    });
    const lines = await logged(async () => {
      const res = await call("/token?service=registry.test", {
        headers: { Authorization: basic("alice", "alice-password") },
      });
      expect(res.status).toBe(503);
      expect(await errorCodeOf(res)).toBe("UNAVAILABLE");
    });
    expect(lines.join("\n")).toContain("login rate limiter failed");
    // Requests that check no password are not affected.
    const anonymous = await call("/v2/");
    expect(anonymous.status).toBe(401);
  });
});
