/**
 * Secure by default, with `wrangler dev` and `npm start` started the way a user starts them, in a
 * fresh checkout:
 *
 *   - wrangler.toml as committed (what `wrangler deploy` ships), no .dev.vars and no --var: token
 *     auth without its secrets, so every request is refused with 503 UNAVAILABLE (fail closed),
 *     the Worker log says why, and nothing is stored or deleted. 503 rather than 401: without
 *     users or a signing key no credentials could ever be accepted, so a challenge would send
 *     clients to a /token that cannot answer, and the owner would see "unauthorized" for what
 *     is a missing setup;
 *   - .dev.vars copied from .dev.vars.example: anonymous writes and deletes get 401 with a
 *     challenge, alice pushes where the rules say, anonymous pulls follow `anonymousPull`, and a
 *     burst of wrong passwords is throttled by the Rate Limiting binding as wrangler simulates it;
 *   - the same settings passed with `--env-file` instead: wrangler expands the `$`s inside the
 *     PBKDF2 hashes, so the registry refuses the configuration (503) unless each `$` is escaped,
 *     as docs/auth.md says;
 *   - `npm start` (scripts/serve.ts): the registry is open, on purpose, and says so; with
 *     `--var AUTH_MODE:token` it runs with the users of .dev.vars, as the deploy does.
 *
 * The checkout is a temp directory with wrangler.toml and .dev.vars.example copied and the
 * sources linked, so a developer's own .dev.vars in the repository never leaks into the test, and
 * the test's .dev.vars never leaks into anyone's `wrangler dev`.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Digest } from "../../core/oci/digest.ts";
import { parseErrorBody } from "../../core/oci/errors.ts";
import { sha256Of } from "../helpers/oci.ts";
import { REPO_ROOT, sleep } from "../helpers/process.ts";
import { logWith, startRegistry, type Registry } from "../helpers/wrangler-dev.ts";

/** What a fresh clone has that `wrangler dev` reads: copied, so the test may add .dev.vars beside them. */
const COPIED = ["wrangler.toml", ".dev.vars.example"];
const LINKED = ["worker", "core", "scripts", "node_modules", "package.json", "tsconfig.json", "tsconfig.base.json"];

/**
 * wrangler.toml `[[ratelimits]]` LOGIN_LIMITER, `simple = { limit = 300, period = 60 }`, where a
 * wrong password costs 5 (worker/auth/login-limit.ts): 60 wrong passwords a minute.
 */
const WRONG_PER_WINDOW = 60;
const LOGIN_PERIOD_MS = 60_000;

const ALICE = { user: "alice", password: "alice-password" };
const ADMIN = { user: "admin", password: "admin-password" };

let work: string;
let checkout: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "2dfs-e2e-secure-"));
  checkout = join(work, "checkout");
  await mkdir(checkout);
  for (const f of COPIED) await copyFile(join(REPO_ROOT, f), join(checkout, f));
  for (const f of LINKED) await symlink(join(REPO_ROOT, f), join(checkout, f));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

// ---- images and requests --------------------------------------------------------------------

interface TinyImage {
  config: Uint8Array;
  layer: Uint8Array;
  manifest: string;
}

const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";

/** A one-layer OCI image with fresh bytes (an uncompressed layer, so its digest is its diff_id). */
function tinyImage(): TinyImage {
  const layer = crypto.getRandomValues(new Uint8Array(4096));
  const diffId = sha256Of(layer);
  const config = new TextEncoder().encode(
    JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [diffId] } }),
  );
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST_TYPE,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: sha256Of(config), size: config.length },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: diffId, size: layer.length }],
  });
  return { config, layer, manifest };
}

function auth(authorization: string | undefined): Record<string, string> {
  return authorization ? { Authorization: authorization } : {};
}

function basic(who: { user: string; password: string }, password = who.password): string {
  return `Basic ${btoa(`${who.user}:${password}`)}`;
}

function putBlob(reg: Registry, repo: string, bytes: Uint8Array, authorization?: string): Promise<Response> {
  return fetch(`${reg.url}/v2/${repo}/blobs/uploads/?digest=${sha256Of(bytes)}`, {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream", ...auth(authorization) },
    body: bytes,
  });
}

function putManifest(reg: Registry, repo: string, tag: string, image: TinyImage, authorization?: string) {
  return fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, {
    method: "PUT",
    headers: { "Content-Type": MANIFEST_TYPE, ...auth(authorization) },
    body: image.manifest,
  });
}

function getManifest(reg: Registry, repo: string, ref: string, authorization?: string): Promise<Response> {
  return fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, {
    headers: { Accept: MANIFEST_TYPE, ...auth(authorization) },
  });
}

function del(reg: Registry, path: string, authorization?: string): Promise<Response> {
  return fetch(`${reg.url}${path}`, { method: "DELETE", headers: auth(authorization) });
}

/** Pushes blobs then manifest, expecting each step to be accepted. */
async function pushImage(reg: Registry, repo: string, tag: string, image: TinyImage, authorization?: string) {
  for (const bytes of [image.config, image.layer]) {
    const res = await putBlob(reg, repo, bytes, authorization);
    expect(res.status, `blob push to ${repo}: ${await res.text()}`).toBe(201);
  }
  const res = await putManifest(reg, repo, tag, image, authorization);
  expect(res.status, `manifest push to ${repo}: ${await res.text()}`).toBe(201);
}

/** `<status> <first OCI error code>`, the way the assertions below read answers. */
async function outcome(pending: Promise<Response>): Promise<string> {
  const res = await pending;
  const code = parseErrorBody(await res.text())?.[0]?.code;
  return code ? `${res.status} ${code}` : String(res.status);
}

/** A token for `scopes`, fetched the way docker and skopeo fetch one. */
async function token(reg: Registry, who: { user: string; password: string }, scopes: string[]): Promise<string> {
  const query = new URLSearchParams([["service", reg.host], ...scopes.map((s) => ["scope", s] as [string, string])]);
  const res = await fetch(`${reg.url}/token?${query}`, { headers: { Authorization: basic(who) } });
  expect(res.status, await res.clone().text()).toBe(200);
  return `Bearer ${((await res.json()) as { token: string }).token}`;
}

// ---- the tests ------------------------------------------------------------------------------

describe("wrangler.toml as committed, no .dev.vars and no --var (a deploy before its secrets are set)", () => {
  const REPO = "team-a/app";
  const stored = tinyImage();
  const fresh = tinyImage();
  let persistDir: string;
  let registry: Registry;

  beforeAll(async () => {
    persistDir = join(work, "state-bare");
    // Something to delete: pushed while the registry runs as `npm start` runs it.
    const seeding = await startRegistry({ launcher: "npm start", projectDir: checkout, persistDir, bare: true });
    try {
      await pushImage(seeding, REPO, "v1", stored);
    } finally {
      await seeding.stop();
    }
    registry = await startRegistry({ launcher: "wrangler dev", projectDir: checkout, persistDir, bare: true });
  });

  afterAll(async () => {
    await registry?.stop();
  });

  it("refuses anonymous blob pushes, manifest pushes and deletes with 503 UNAVAILABLE", async () => {
    const layer = sha256Of(stored.layer);
    expect({
      "blob push": await outcome(putBlob(registry, REPO, fresh.layer)),
      "upload session": await outcome(fetch(`${registry.url}/v2/${REPO}/blobs/uploads/`, { method: "POST" })),
      "manifest push": await outcome(putManifest(registry, REPO, "v2", stored)),
      "manifest delete": await outcome(del(registry, `/v2/${REPO}/manifests/v1`)),
      "blob delete": await outcome(del(registry, `/v2/${REPO}/blobs/${layer}`)),
      "manifest pull": await outcome(getManifest(registry, REPO, "v1")),
      "GET /v2/": await outcome(fetch(`${registry.url}/v2/`)),
      "GET /token": await outcome(fetch(`${registry.url}/token?service=${registry.host}`)),
      "Basic credentials": await outcome(putBlob(registry, REPO, fresh.layer, basic(ALICE))),
    }).toEqual({
      "blob push": "503 UNAVAILABLE",
      "upload session": "503 UNAVAILABLE",
      "manifest push": "503 UNAVAILABLE",
      "manifest delete": "503 UNAVAILABLE",
      "blob delete": "503 UNAVAILABLE",
      "manifest pull": "503 UNAVAILABLE",
      "GET /v2/": "503 UNAVAILABLE",
      "GET /token": "503 UNAVAILABLE",
      "Basic credentials": "503 UNAVAILABLE",
    });
  });

  it("says in the Worker log what is missing", async () => {
    const line = 'auth configuration refused: AUTH_MODE is "token" but AUTH_CONFIG and TOKEN_SIGNING_KEY are not set';
    expect(await logWith(registry, line)).toContain(line);
  });

  it("stored and deleted nothing (seen through an open registry on the same state)", async () => {
    await registry.stop();
    const open = await startRegistry({ launcher: "npm start", projectDir: checkout, persistDir, bare: true });
    try {
      expect(await outcome(getManifest(open, REPO, "v1"))).toBe("200");
      expect(await outcome(getManifest(open, REPO, "v2"))).toBe("404 MANIFEST_UNKNOWN");
      expect(await outcome(fetch(`${open.url}/v2/${REPO}/blobs/${sha256Of(stored.layer)}`))).toBe("200");
      expect(await outcome(fetch(`${open.url}/v2/${REPO}/blobs/${sha256Of(fresh.layer)}`))).toBe("404 BLOB_UNKNOWN");
    } finally {
      await open.stop();
    }
  });
});

describe(".dev.vars copied from .dev.vars.example, then a bare `wrangler dev`", () => {
  let registry: Registry;

  beforeAll(async () => {
    await copyFile(join(checkout, ".dev.vars.example"), join(checkout, ".dev.vars"));
    registry = await startRegistry({ launcher: "wrangler dev", projectDir: checkout, bare: true });
  });

  afterAll(async () => {
    await registry?.stop();
  });

  /** Waits for a fresh rate-limit window when less than `needMs` of this one is left (miniflare aligns them to the clock). */
  async function startOfWindow(needMs: number): Promise<void> {
    const left = LOGIN_PERIOD_MS - (Date.now() % LOGIN_PERIOD_MS);
    if (left < needMs) await sleep(left + 200);
  }

  const tokenAs = (who: { user: string; password: string }, password = who.password) =>
    fetch(`${registry.url}/token?service=${registry.host}&scope=repository:team-a/app:pull`, {
      headers: { Authorization: basic(who, password) },
    });

  // First, while alice has signed in nowhere yet, so her whole budget is this burst's.
  it("answers a burst of wrong passwords for alice with 429 and Retry-After, her right password too, until the window ends", async () => {
    await startOfWindow(30_000);
    const statuses: number[] = [];
    for (let i = 0; i < WRONG_PER_WINDOW; i++) {
      const res = await tokenAs(ALICE, `guess-${i}`);
      await res.body?.cancel();
      statuses.push(res.status);
    }
    expect(statuses).toEqual(Array<number>(WRONG_PER_WINDOW).fill(401));

    for (const pending of [
      tokenAs(ALICE, "one more guess"),
      tokenAs(ALICE),
      fetch(`${registry.url}/v2/`, { headers: { Authorization: basic(ALICE) } }),
    ]) {
      const res = await pending;
      expect(res.status).toBe(429);
      expect(res.headers.get("Retry-After")).toBe("60");
      expect(parseErrorBody(await res.text())?.[0]?.code).toBe("TOOMANYREQUESTS");
    }
    // Another user is not affected.
    expect((await tokenAs(ADMIN)).status).toBe(200);

    await sleep(LOGIN_PERIOD_MS - (Date.now() % LOGIN_PERIOD_MS) + 500);
    expect((await tokenAs(ALICE)).status).toBe(200);
    const form = await fetch(`${registry.url}/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "password", username: "alice", password: ALICE.password }).toString(),
    });
    expect(form.status).toBe(200);
  }, 150_000);

  it("refuses anonymous blob pushes, manifest pushes and deletes with 401 and a Bearer challenge", async () => {
    const image = tinyImage();
    const blob = await putBlob(registry, "team-a/app", image.layer);
    expect(blob.status).toBe(401);
    expect(blob.headers.get("WWW-Authenticate")).toBe(
      `Bearer realm="${registry.url}/token",service="${registry.host}",scope="repository:team-a/app:pull,push"`,
    );
    expect(await outcome(putManifest(registry, "public/base", "v1", image))).toBe("401 UNAUTHORIZED");
    expect(await outcome(del(registry, "/v2/team-a/app/manifests/v1"))).toBe("401 UNAUTHORIZED");
    expect(await outcome(del(registry, `/v2/public/base/blobs/${sha256Of(image.layer)}`))).toBe("401 UNAUTHORIZED");
  });

  it("lets alice push to team-a/* and public/** only, and only admin delete", async () => {
    const image = tinyImage();
    const scopes = ["team-a/app", "public/base", "private/vault"].map((r) => `repository:${r}:pull,push,delete`);
    const alice = await token(registry, ALICE, scopes);
    await pushImage(registry, "team-a/app", "v1", image, alice);
    await pushImage(registry, "public/base", "v1", image, alice);
    expect(await outcome(putBlob(registry, "private/vault", image.layer, alice))).toBe("403 DENIED");
    expect(await outcome(del(registry, "/v2/team-a/app/manifests/v1", alice))).toBe("403 DENIED");

    const admin = await token(registry, ADMIN, ["repository:team-a/app:delete"]);
    const digest: Digest = sha256Of(image.manifest);
    expect(await outcome(del(registry, `/v2/team-a/app/manifests/${digest}`, admin))).toBe("202");
  });

  it("serves anonymous pulls where anonymousPull says so (public/**), and asks for credentials elsewhere", async () => {
    expect(await outcome(getManifest(registry, "public/base", "v1"))).toBe("200");
    expect(await outcome(getManifest(registry, "team-a/app", "v1"))).toBe("401 UNAUTHORIZED");
  });
});

describe("the .dev.vars.example settings passed with --env-file", () => {
  const signIn = (reg: Registry) =>
    fetch(`${reg.url}/token?service=${reg.host}`, { headers: { Authorization: basic(ALICE) } });

  it("lose the $ parts of their hashes: the registry refuses its configuration with 503", async () => {
    const file = join(work, "as-is.env");
    await copyFile(join(checkout, ".dev.vars.example"), file);
    const registry = await startRegistry({
      launcher: "wrangler dev",
      projectDir: checkout,
      bare: true,
      args: ["--env-file", file],
    });
    try {
      expect(await outcome(signIn(registry))).toBe("503 UNAVAILABLE");
      const line = "users.alice.password: must look like pbkdf2-sha256$<iterations>$<salt>$<hash>";
      expect(await logWith(registry, line)).toContain(line);
    } finally {
      await registry.stop();
    }
  });

  it("work when every $ is written \\$", async () => {
    const file = join(work, "escaped.env");
    await writeFile(file, (await readFile(join(checkout, ".dev.vars.example"), "utf8")).replaceAll("$", "\\$"));
    const registry = await startRegistry({
      launcher: "wrangler dev",
      projectDir: checkout,
      bare: true,
      args: ["--env-file", file],
    });
    try {
      expect(await outcome(signIn(registry))).toBe("200");
    } finally {
      await registry.stop();
    }
  });
});

describe("`npm start` opens the registry on purpose (AUTH_MODE=none), even beside a .dev.vars", () => {
  let registry: Registry;

  beforeAll(async () => {
    registry = await startRegistry({ launcher: "npm start", projectDir: checkout, bare: true });
  });

  afterAll(async () => {
    await registry?.stop();
  });

  it("says so when it starts", () => {
    expect(registry.log()).toContain("open to anyone (AUTH_MODE=none)");
  });

  it("accepts an anonymous blob push, manifest push and delete", async () => {
    const image = tinyImage();
    await pushImage(registry, "anyone/app", "v1", image);
    expect(await outcome(getManifest(registry, "anyone/app", "v1"))).toBe("200");
    expect(await outcome(del(registry, `/v2/anyone/app/manifests/${sha256Of(image.manifest)}`))).toBe("202");
  });

  it("with --var AUTH_MODE:token, runs as the deploy does, with the users of .dev.vars", async () => {
    const closed = await startRegistry({
      launcher: "npm start",
      projectDir: checkout,
      bare: true,
      vars: { AUTH_MODE: "token" },
    });
    try {
      const image = tinyImage();
      expect(await outcome(putBlob(closed, "team-a/app", image.layer))).toBe("401 UNAUTHORIZED");
      const alice = await token(closed, ALICE, ["repository:team-a/app:pull,push"]);
      await pushImage(closed, "team-a/app", "v1", image, alice);
      expect(await outcome(getManifest(closed, "team-a/app", "v1"))).toBe("401 UNAUTHORIZED");
      expect(await outcome(getManifest(closed, "team-a/app", "v1", alice))).toBe("200");
    } finally {
      await closed.stop();
    }
  });
});
