/**
 * Where registry credentials come from, first match wins:
 *   1. `--username` and `--password-stdin`, passed in by the CLI;
 *   2. the environment: TDFS_USERNAME and TDFS_PASSWORD (either may complete the flags, e.g.
 *      `--username` with TDFS_PASSWORD for CI secrets);
 *   3. docker's config file, `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`: the
 *      `auths[host].auth` entry (base64 of `user:password`) or its `username`/`password` fields.
 * Credential helpers (`credsStore`, `credHelpers`) and identity tokens are not run: such an
 * entry is skipped, as if absent, and the push goes on anonymously.
 */
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

export interface Credentials {
  username: string;
  password: string;
  /** Where they were found, for messages; never the secret itself. */
  source: "flags" | "env" | "docker-config";
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
  return fromDockerConfig(q.registry, env);
}

interface DockerAuthEntry {
  auth?: string;
  username?: string;
  password?: string;
}

async function fromDockerConfig(
  registry: string,
  env: Record<string, string | undefined>,
): Promise<Credentials | undefined> {
  const dir = env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), ".docker");
  let text: string;
  try {
    text = await readFile(join(dir, "config.json"), "utf8");
  } catch {
    return undefined;
  }
  let config: { auths?: Record<string, DockerAuthEntry> };
  try {
    config = JSON.parse(text) as typeof config;
  } catch {
    throw new CredentialsError(`${join(dir, "config.json")} is not valid JSON`);
  }
  const wanted = hostAliases(registry);
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (!wanted.has(normalizeConfigKey(key))) continue;
    const creds = decodeEntry(entry);
    if (creds) return { ...creds, source: "docker-config" };
  }
  return undefined;
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
