/**
 * Where registry credentials come from, first match wins:
 *   1. `--username` and `--password-stdin`, passed in by the CLI;
 *   2. the environment: TDFS_USERNAME and TDFS_PASSWORD (either may complete the flags, e.g.
 *      `--username` with TDFS_PASSWORD for CI secrets);
 *   3. docker's config file, `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`: a credential
 *      helper named for the host in `credHelpers`, else the host's `auths` entry (base64 of
 *      `user:password`, or `username`/`password`), else the `credsStore` helper. A helper is run
 *      as docker runs it: `docker-credential-<name> get`, the server on stdin, JSON on stdout;
 *   4. the containers auth file that `podman login` and `skopeo login` write:
 *      `$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json` (same format).
 * A helper configured for this very host that is not installed is an error the user must fix; a
 * `credsStore` that is not installed (a config copied from another machine) is passed over, as
 * are identity tokens, which this CLI cannot use.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

export interface Credentials {
  username: string;
  password: string;
  /** Where they were found, for messages; never the secret itself. */
  source: "flags" | "env" | "docker-config" | "credential-helper" | "containers-auth";
}

export interface CredentialQuery {
  /** host[:port] as in ImageRef.registry. */
  registry: string;
  username?: string;
  password?: string;
  /** Defaults to process.env; tests pass their own. */
  env?: Record<string, string | undefined>;
}

export const ENV_USERNAME = "TDFS_USERNAME";
export const ENV_PASSWORD = "TDFS_PASSWORD";

export class CredentialsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CredentialsError";
  }
}

export async function resolveCredentials(q: CredentialQuery): Promise<Credentials | undefined> {
  const env = q.env ?? process.env;
  const username = q.username ?? env[ENV_USERNAME];
  const password = q.password ?? env[ENV_PASSWORD];
  if (username !== undefined && password !== undefined) {
    const fromFlags = q.username !== undefined || q.password !== undefined;
    return { username, password, source: fromFlags ? "flags" : "env" };
  }
  if (username !== undefined) {
    throw new CredentialsError(`a username was given without a password: use --password-stdin or ${ENV_PASSWORD}`);
  }
  if (password !== undefined) {
    throw new CredentialsError(`a password was given without a username: use --username or ${ENV_USERNAME}`);
  }
  const dockerDir = env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), ".docker");
  const docker = await fromConfigFile(join(dockerDir, "config.json"), q.registry, env, "docker-config");
  if (docker) return docker;
  const containersFile =
    env.REGISTRY_AUTH_FILE ?? (env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, "containers", "auth.json") : undefined);
  return containersFile ? fromConfigFile(containersFile, q.registry, env, "containers-auth") : undefined;
}

interface DockerAuthEntry {
  auth?: string;
  username?: string;
  password?: string;
}

interface AuthConfig {
  auths?: Record<string, DockerAuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** Credentials for `registry` from a docker-format config file; undefined when it has none. */
async function fromConfigFile(
  file: string,
  registry: string,
  env: Record<string, string | undefined>,
  source: "docker-config" | "containers-auth",
): Promise<Credentials | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return undefined;
  }
  let config: AuthConfig;
  try {
    config = JSON.parse(text) as AuthConfig;
  } catch {
    throw new CredentialsError(`${file} is not valid JSON`);
  }
  const wanted = hostAliases(registry);
  const helper = Object.entries(config.credHelpers ?? {}).find(([key]) => wanted.has(normalizeConfigKey(key)))?.[1];
  if (helper) return runHelper(helper, registry, env, { required: true, file });
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (!wanted.has(normalizeConfigKey(key))) continue;
    const creds = decodeEntry(entry);
    if (creds) return { ...creds, source };
  }
  if (config.credsStore) return runHelper(config.credsStore, registry, env, { required: false, file });
  return undefined;
}

/** How long a credential helper may take (one may unlock a keychain). */
const HELPER_TIMEOUT_MS = 30_000;

/**
 * `docker-credential-<name> get` with the server on stdin. "Not found" (a non-zero exit) is no
 * credentials; a helper that is not installed is an error only when configured for this host.
 */
async function runHelper(
  name: string,
  registry: string,
  env: Record<string, string | undefined>,
  opts: { required: boolean; file: string },
): Promise<Credentials | undefined> {
  const program = `docker-credential-${name}`;
  // Docker keys Docker Hub by its v1 URL; every other registry by its host.
  const server = hostAliases(registry).has("docker.io") ? "https://index.docker.io/v1/" : registry;
  const result = await new Promise<{ code: number | null; stdout: string; missing: boolean }>((resolve) => {
    const child = spawn(program, ["get"], {
      env: Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined)),
      stdio: ["pipe", "pipe", "ignore"],
      timeout: HELPER_TIMEOUT_MS,
    });
    let stdout = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString("utf8")));
    child.on("error", (e: NodeJS.ErrnoException) => resolve({ code: null, stdout, missing: e.code === "ENOENT" }));
    child.on("close", (code) => resolve({ code, stdout, missing: false }));
    child.stdin.on("error", () => {});
    child.stdin.end(server);
  });
  if (result.missing) {
    if (!opts.required) return undefined;
    throw new CredentialsError(
      `${opts.file} names the credential helper "${name}" for ${registry}, but ${program} is not on PATH: install it, or remove the entry`,
    );
  }
  if (result.code !== 0) return undefined;
  let answer: { Username?: unknown; Secret?: unknown };
  try {
    answer = JSON.parse(result.stdout) as typeof answer;
  } catch {
    throw new CredentialsError(`${program} get answered something that is not JSON`);
  }
  const { Username: username, Secret: password } = answer;
  // "<token>" marks an identity token, which only docker's own login flow can use.
  if (typeof username !== "string" || typeof password !== "string" || username === "<token>" || !password) {
    return undefined;
  }
  return { username, password, source: "credential-helper" };
}

function decodeEntry(entry: DockerAuthEntry): { username: string; password: string } | undefined {
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (entry.username && entry.password) return { username: entry.username, password: entry.password };
  return undefined;
}

/** docker writes keys as `host`, `https://host` or, for Docker Hub, `https://index.docker.io/v1/`. */
function normalizeConfigKey(key: string): string {
  return key
    .replace(/^[a-z]+:\/\//i, "")
    .replace(/\/.*$/, "")
    .toLowerCase();
}

function hostAliases(registry: string): Set<string> {
  const host = registry.toLowerCase();
  const hub = ["docker.io", "index.docker.io", "registry-1.docker.io"];
  return new Set(hub.includes(host) ? hub : [host]);
}
