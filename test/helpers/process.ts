/**
 * Running the real programs the end-to-end tests drive (skopeo, ctr, the scripts in scripts/):
 * a command either succeeds and yields its output, or fails with an error that carries its
 * stderr, so a failing test says what the tool said.
 */
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

/** The repository root, for scripts/ and node_modules/.bin. */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface RunOptions {
  /** Bytes written to the child's stdin. */
  input?: string;
  cwd?: string;
  env?: Record<string, string>;
  /** Accept a non-zero exit instead of throwing (the caller inspects `code`). */
  allowFailure?: boolean;
}

export class CommandError extends Error {
  readonly result: RunResult;
  constructor(command: string, result: RunResult) {
    super(`${command} exited with ${result.code}:\n${tail(result.stderr || result.stdout, 40)}`);
    this.name = "CommandError";
    this.result = result;
  }
}

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd ?? REPO_ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const result = {
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        code: code ?? (signal ? 128 : 1),
      };
      if (result.code !== 0 && !opts.allowFailure) reject(new CommandError([cmd, ...args].join(" "), result));
      else resolve(result);
    });
    // A program that exits without reading its input (tmux, a quick `--version`) closes the pipe
    // first: the EPIPE that follows says nothing about the command, whose exit code does.
    child.stdin.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code !== "EPIPE") reject(e);
    });
    child.stdin.end(opts.input ?? "");
  });
}

/** A TCP port that was free a moment ago (the OS picks it; the race window is tiny on a test box). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

export function tail(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
