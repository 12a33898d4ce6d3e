/**
 * `2dfs-push` against our registry with auth on (AUTH_MODE=token, `wrangler dev`): the Docker
 * token flow with credentials from each place the CLI takes them (`--username` with
 * `--password-stdin`, TDFS_USERNAME/TDFS_PASSWORD, `~/.docker/config.json`, a docker credential
 * helper, the containers auth file `skopeo login` writes), and a clear refusal,
 * exit 1, with a wrong password or none, leaving nothing pushed.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256Of } from "../helpers/oci.ts";
import { REPO_ROOT, run } from "../helpers/process.ts";
import * as skopeo from "../helpers/skopeo.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";
import { cliSandbox, type BuildPushOutput, type CliSandbox, type PushReport } from "./builder-cli.ts";

const USER = "pusher";
const PASSWORD = "pusher: s3cret pw";
const CREDS = `${USER}:${PASSWORD}`;
// Every push here sends the same 2x2 model: after the first, the CLI mounts its blobs from the
// repository that has them (which takes the same credentials) instead of uploading them again.

async function hashOf(password: string): Promise<string> {
  const { stdout } = await run(process.execPath, [join(REPO_ROOT, "scripts", "hash-password.ts")], { input: password });
  return stdout.trim();
}

describe("2dfs-push with registry auth (token flow, wrangler dev)", () => {
  let registry: Registry;
  let sandbox: CliSandbox;
  let src: string;

  beforeAll(async () => {
    sandbox = await cliSandbox();
    const [hash, fixture] = await Promise.all([hashOf(PASSWORD), sandbox.fixture("2x2")]);
    src = fixture;
    registry = await startRegistry({
      vars: {
        AUTH_MODE: "token",
        AUTH_CONFIG: JSON.stringify({
          users: { [USER]: { password: hash } },
          rules: [{ repos: "team-a/*", push: [USER] }],
        }),
        TOKEN_SIGNING_KEY: "e2e-builder-signing-key-0123456789abcdef",
      },
    });
  });

  afterAll(async () => {
    await Promise.all([registry?.stop(), sandbox?.cleanup()]);
  });

  /** Builds `repo:v1` for the registry into the local store (no registry involved: the base is scratch). */
  async function built(repo: string): Promise<string> {
    const ref = `${registry.host}/${repo}:v1`;
    await sandbox.json(["build", "scratch", ref], { cwd: src });
    return ref;
  }

  /** The pushed index, read back with skopeo as the same user. */
  async function pushedDigest(ref: string): Promise<string> {
    return sha256Of(await skopeo.inspectRaw(`docker://${ref}`, { creds: CREDS }));
  }

  it("build --push with --username and --password-stdin", async () => {
    const ref = `${registry.host}/team-a/flags:v1`;
    const out = await sandbox.json<BuildPushOutput>(
      ["build", "scratch", ref, "--push", "--username", USER, "--password-stdin"],
      { cwd: src, input: `${PASSWORD}\n` },
    );
    expect(out.push.blobsUploaded).toBe(out.push.blobsTotal);
    expect(await pushedDigest(ref)).toBe(out.build.digest);
  });

  it("push with TDFS_USERNAME and TDFS_PASSWORD", async () => {
    const ref = await built("team-a/env");
    const report = await sandbox.json<PushReport>(["push", ref], {
      env: { TDFS_USERNAME: USER, TDFS_PASSWORD: PASSWORD },
    });
    expect(report.blobsUploaded + report.blobsMounted).toBe(report.blobsTotal);
    expect(await pushedDigest(ref)).toBe(report.digest);
  });

  it("push with the credentials of ~/.docker/config.json", async () => {
    const ref = await built("team-a/docker-config");
    const home = join(sandbox.dir, "docker-home");
    await mkdir(join(home, ".docker"), { recursive: true });
    const auth = Buffer.from(CREDS).toString("base64");
    await writeFile(join(home, ".docker", "config.json"), JSON.stringify({ auths: { [registry.host]: { auth } } }));
    const report = await sandbox.json<PushReport>(["push", ref], { env: { HOME: home } });
    expect(report.blobsUploaded + report.blobsMounted).toBe(report.blobsTotal);
    expect(await pushedDigest(ref)).toBe(report.digest);
  });

  it("push with a docker credential helper (credsStore), as Docker Desktop configures it", async () => {
    const ref = await built("team-a/cred-helper");
    const dir = join(sandbox.dir, "cred-helper");
    await mkdir(join(dir, "bin"), { recursive: true });
    // docker-credential-<name> get: the server on stdin, JSON on stdout.
    await writeFile(
      join(dir, "bin", "docker-credential-e2e"),
      [
        "#!/bin/sh",
        "read -r server",
        `[ "$server" = '${registry.host}' ] || exit 1`,
        `printf '%s' '${JSON.stringify({ ServerURL: registry.host, Username: USER, Secret: PASSWORD })}'`,
        "",
      ].join("\n"),
      { mode: 0o755 },
    );
    await writeFile(join(dir, "config.json"), JSON.stringify({ credsStore: "e2e" }));
    const report = await sandbox.json<PushReport>(["push", ref], {
      env: { DOCKER_CONFIG: dir, PATH: `${join(dir, "bin")}:${sandbox.env.PATH}` },
    });
    expect(report.blobsUploaded + report.blobsMounted).toBe(report.blobsTotal);
    expect(await pushedDigest(ref)).toBe(report.digest);
  });

  it("push with the containers auth file that skopeo login writes ($REGISTRY_AUTH_FILE)", async () => {
    const ref = await built("team-a/containers-auth");
    const authFile = join(sandbox.dir, "containers-auth.json");
    await run(
      "skopeo",
      ["login", "--tls-verify=false", "--authfile", authFile, "--username", USER, "--password-stdin", registry.host],
      { input: PASSWORD },
    );
    const report = await sandbox.json<PushReport>(["push", ref], { env: { REGISTRY_AUTH_FILE: authFile } });
    expect(report.blobsUploaded + report.blobsMounted).toBe(report.blobsTotal);
    expect(await pushedDigest(ref)).toBe(report.digest);
  });

  it("refuses a wrong password: exit 1, a message that says so, nothing pushed", async () => {
    const ref = await built("team-a/wrong");
    const r = await sandbox.run(["push", ref, "--username", USER, "--password-stdin"], { input: "not the password\n" });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(
      new RegExp(`^2dfs-push: token request as "${USER}" to ${registry.url}/token was refused: HTTP 401\\n$`),
    );
    expect(r.stderr).not.toContain("not the password");
    await expect(skopeo.listTags(`docker://${registry.host}/team-a/wrong`, { creds: CREDS })).rejects.toThrow(
      /unknown|not found|404/i,
    );
  });

  it("refuses a push without credentials: exit 1, a message that says how to give them", async () => {
    const ref = await built("team-a/anonymous");
    const r = await sandbox.run(["push", ref]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^2dfs-push: .*HTTP 401, the registry requires a username and password: use --username/);
  });
});
