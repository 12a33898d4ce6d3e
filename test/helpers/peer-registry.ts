/**
 * The CNCF distribution registry as a private peer, in two flavours: open (the one in peer.ts,
 * re-exported so registry tests find both here) and behind htpasswd Basic auth. The htpasswd
 * file needs bcrypt hashes; with no `htpasswd` binary here, perl's crypt() makes them (glibc's
 * libxcrypt implements `$2b$`, which distribution's Go bcrypt accepts).
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PeerRegistry } from "./peer.ts";
import { freePort, run, sleep } from "./process.ts";

export { startPeerRegistry, type PeerRegistry } from "./peer.ts";

export interface AuthPeerRegistry extends PeerRegistry {
  /** `user:password` of the first user, as skopeo's --creds takes it. */
  creds: string;
}

/** bcrypt's own base64 alphabet, for the 22-character salt. */
const BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

async function bcrypt(password: string): Promise<string> {
  const salt = [...randomBytes(22)].map((b) => BCRYPT_ALPHABET[b % 64]).join("");
  // Cost 5 keeps logins fast; the password travels on stdin, not in argv.
  const { stdout } = await run("perl", ["-e", `chomp(my $p = <STDIN>); print crypt($p, '$2b$05$${salt}')`], {
    input: `${password}\n`,
  });
  if (!stdout.startsWith("$2b$05$")) throw new Error(`perl crypt() cannot make bcrypt hashes here: ${stdout}`);
  return stdout;
}

export async function startPeerRegistryWithAuth(users: Record<string, string>): Promise<AuthPeerRegistry> {
  const entries = Object.entries(users);
  if (!entries.length) throw new Error("startPeerRegistryWithAuth needs at least one user");
  const dir = await mkdtemp(join(tmpdir(), "2dfs-peer-auth-"));
  try {
    await mkdir(join(dir, "data"));
    const lines = await Promise.all(entries.map(async ([u, p]) => `${u}:${await bcrypt(p)}`));
    await writeFile(join(dir, "htpasswd"), `${lines.join("\n")}\n`);
    const port = await freePort();
    await writeFile(
      join(dir, "config.yml"),
      [
        "version: 0.1",
        "log: {level: warn, accesslog: {disabled: true}}",
        "storage:",
        `  filesystem: {rootdirectory: ${join(dir, "data")}}`,
        "  maintenance: {uploadpurging: {enabled: false}}",
        `http: {addr: "127.0.0.1:${port}"}`,
        `auth: {htpasswd: {realm: 2dfs-test, path: ${join(dir, "htpasswd")}}}`,
        "",
      ].join("\n"),
    );
    const log = await open(join(dir, "registry.log"), "w");
    const child = spawn("docker-registry", ["serve", join(dir, "config.yml")], {
      stdio: ["ignore", log.fd, log.fd],
    });
    await log.close();
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const url = `http://127.0.0.1:${port}`;
    const stop = async (): Promise<void> => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    };
    for (let i = 0; i < 150; i++) {
      const status = await fetch(`${url}/v2/`).then(
        (r) => r.status,
        () => 0,
      );
      if (status === 401) {
        const [user, password] = entries[0]!;
        return { url, host: `127.0.0.1:${port}`, port, dir, stop, creds: `${user}:${password}` };
      }
      if (child.exitCode !== null) break;
      await sleep(100);
    }
    await stop();
    throw new Error(`docker-registry with htpasswd auth did not start on ${url}`);
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
