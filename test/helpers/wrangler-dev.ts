/**
 * The registry started the way a user starts it: `wrangler dev` (from node_modules) or `npm start`
 * (scripts/serve.ts), serving the Worker with local R2 and KV. Each instance gets its own port
 * and, unless told otherwise, its own persistence directory, so tests never see or touch the
 * user's `.wrangler/state`.
 *
 * wrangler.toml ships token auth; like `npm start`, the registry here runs open
 * (`--var AUTH_MODE:none`) unless a test passes its own AUTH_MODE, or asks for a bare start.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, openSync, closeSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, REPO_ROOT, sleep, tail } from "./process.ts";

export interface RegistryOptions {
  /**
   * How it is started: `wrangler dev` (live reload, wrangler's proxy in front), or `npm start`
   * (scripts/serve.ts: the deploy's bundle in one workerd, no proxy). Both take the same flags;
   * under `npm start`, `bare` drops only DEFAULT_VARS, not npm start's own. Unset, it is
   * `wrangler dev`, or what the environment's E2E_LAUNCHER says: `E2E_LAUNCHER="npm start" npm run
   * test:e2e` runs every test that does not choose under `npm start`.
   */
  launcher?: "wrangler dev" | "npm start";
  /**
   * Worker vars, passed as `--var KEY:VALUE` (they override wrangler.toml's [vars] and .dev.vars),
   * on top of DEFAULT_VARS.
   */
  vars?: Record<string, string>;
  /**
   * Worker secrets, as an operator keeps them out of the command line: written to a file of mode
   * 0600 and passed with `--env-file` (both launchers), so neither npm's echo of the command nor
   * the process list shows them. As with wrangler, `.dev.vars` is then not read.
   */
  secrets?: Record<string, string>;
  /** No DEFAULT_VARS: `wrangler dev` with wrangler.toml as committed, plus only `vars`. */
  bare?: boolean;
  /** Where wrangler runs, and so where it reads wrangler.toml and .dev.vars: the repository by default. */
  projectDir?: string;
  /** More `wrangler dev` arguments, such as `--env-file <path>`. */
  args?: string[];
  /** Persist R2/KV here and keep it on stop; by default a temp dir that stop() removes. */
  persistDir?: string;
  /** How long to wait for GET /v2/ to answer. */
  startTimeoutMs?: number;
}

export interface Registry {
  /** http://127.0.0.1:PORT, no trailing slash. */
  url: string;
  /** 127.0.0.1:PORT, as image references spell the host. */
  host: string;
  port: number;
  persistDir: string;
  /** wrangler's output, one request per line ("POST /v2/... 201 Created"): kept after stop. */
  logPath: string;
  /** The log so far. */
  log(): string;
  stop(): Promise<void>;
  /**
   * Kills wrangler and workerd at once with SIGKILL, as a crash or power cut would: nothing gets
   * to flush or clean up. The persistence dir is kept, so a new instance can start on it.
   */
  crash(): Promise<void>;
}

/** Where wrangler logs go: outside the temp persistence dirs, so they survive a failed run. */
export const LOG_DIR = join(tmpdir(), "2dfs-e2e-logs");

const WRANGLER_JS = join(REPO_ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

/**
 * The registry open, on purpose, as `npm start` opens it. Unlike `npm start`, blob caching stays
 * on, so that the end-to-end tests also exercise the edge-cache path the deploy uses.
 */
export const DEFAULT_VARS: Readonly<Record<string, string>> = { AUTH_MODE: "none" };

export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  const port = await freePort();
  const inspectorPort = await freePort();
  const ownsPersistDir = opts.persistDir === undefined;
  const persistDir = opts.persistDir ?? (await mkdtemp(join(tmpdir(), "2dfs-registry-")));
  mkdirSync(LOG_DIR, { recursive: true });
  const logPath = join(LOG_DIR, `wrangler-${port}-${Date.now()}.log`);
  const logFd = openSync(logPath, "a");

  const launcher = opts.launcher ?? (process.env.E2E_LAUNCHER === "npm start" ? "npm start" : "wrangler dev");
  const common = [`--port=${port}`, `--persist-to=${persistDir}`, ...(opts.args ?? [])];
  const args =
    launcher === "npm start"
      ? ["start", "--", "--ip=127.0.0.1", ...common]
      : [
          WRANGLER_JS,
          "dev",
          "--ip=127.0.0.1",
          `--inspector-port=${inspectorPort}`,
          "--show-interactive-dev-session=false",
          "--log-level=info",
          ...common,
        ];
  const vars = { ...(opts.bare ? {} : DEFAULT_VARS), ...opts.vars };
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  const secretsDir = opts.secrets ? await mkdtemp(join(tmpdir(), "2dfs-secrets-")) : undefined;
  if (secretsDir !== undefined) {
    const file = join(secretsDir, "secrets.env");
    await writeFile(file, envFile(opts.secrets!), { mode: 0o600 });
    args.push("--env-file", file);
  }

  // wrangler dev: process.execPath, the Node that runs the tests (24), not whatever `node` is
  // first on PATH. npm start: npm itself, which puts node_modules/.bin (and so Node 24) first.
  // detached: the launcher and its workerd children form their own process group, killed as one.
  const child = spawn(launcher === "npm start" ? "npm" : process.execPath, args, {
    cwd: opts.projectDir ?? REPO_ROOT,
    detached: true,
    stdio: ["ignore", logFd, logFd],
    env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" },
  });
  closeSync(logFd);
  const log = (): string => readFileSync(logPath, "utf8");
  const url = `http://127.0.0.1:${port}`;

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await killGroup(child);
    if (secretsDir !== undefined) await rm(secretsDir, { recursive: true, force: true });
    if (ownsPersistDir) await rm(persistDir, { recursive: true, force: true });
  };

  const crash = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    const pid = child.pid;
    if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    signalGroup(pid, "SIGKILL");
    await exited;
  };

  try {
    await waitUntilServing(url, child, launcher, opts.startTimeoutMs ?? 60_000);
    // npm start prints its ready line (and any warning after it) once Miniflare's ready resolves,
    // a moment after workerd already answers: tests that read that line must find it there.
    if (launcher === "npm start" && !(await logWith({ log }, "registry: ready on")).includes("registry: ready on")) {
      throw new Error("npm start answered but never said it was ready");
    }
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n${launcher} log (${logPath}):\n${tail(log(), 30)}`);
  }
  return { url, host: `127.0.0.1:${port}`, port, persistDir, logPath, log, stop, crash };
}

/**
 * KEY="value" lines that wrangler's dotenv reader gives back unchanged, newlines (a PEM) included.
 * It expands `$NAME` and reads backslashes and quotes, so a value holding one is refused here
 * rather than arriving altered.
 */
function envFile(secrets: Record<string, string>): string {
  return Object.entries(secrets)
    .map(([k, v]) => {
      if (/[$\\"]/.test(v))
        throw new Error(`secret ${k}: a value with $, \\ or " would not reach the Worker as written`);
      return `${k}="${v}"\n`;
    })
    .join("");
}

/**
 * Ready means the Worker itself answers /v2/: 200, 401 when auth is on, or any answer of the
 * registry's own (it sends Docker-Distribution-API-Version), such as its 503 when auth is on
 * without its secrets.
 */
/** The log once it holds `text` (or after `timeoutMs`): output reaches the log a moment after an answer. */
export async function logWith(reg: { log(): string }, text: string, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (!reg.log().includes(text) && Date.now() < deadline) await sleep(100);
  return reg.log();
}

async function waitUntilServing(url: string, child: ChildProcess, launcher: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${launcher} exited (${child.exitCode ?? child.signalCode}) before serving`);
    }
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2_000) });
      await res.body?.cancel();
      if (res.status === 200 || res.status === 401 || res.headers.has("Docker-Distribution-API-Version")) return;
      last = `GET /v2/ answered ${res.status}`;
    } catch (e) {
      last = String((e as Error).cause ?? e);
    }
    await sleep(200);
  }
  throw new Error(`${launcher} did not serve ${url}/v2/ within ${timeoutMs} ms (${last})`);
}

async function killGroup(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  signalGroup(pid, "SIGTERM");
  const graceful = await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)]);
  if (!graceful) {
    signalGroup(pid, "SIGKILL");
    await exited;
  }
  // workerd may outlive wrangler for a moment; make sure nothing of the group is left.
  signalGroup(pid, "SIGKILL");
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}
