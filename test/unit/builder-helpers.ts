/**
 * Runs the real `2dfs-push` CLI as a subprocess, with its cache and store in a private temp
 * directory, as a user would run it.
 */
import { spawnSync } from "node:child_process";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const CLI = path.join(ROOT, "builder-cli/bin/2dfs-push.ts");
export const FIXTURES = path.join(ROOT, "test/fixtures/builder");

export interface CliRun {
  status: number;
  stdout: string;
  stderr: string;
}

export interface Sandbox {
  dir: string;
  env: NodeJS.ProcessEnv;
  run(args: string[], cwd?: string): CliRun;
  /** Runs with --json and parses stdout; fails the test on a non-zero exit. */
  json<T>(args: string[], cwd?: string): T;
  /** Copies a fixture directory to a fresh path under the sandbox. */
  copyFixture(name: string, as: string): Promise<string>;
  cleanup(): Promise<void>;
}

export async function sandbox(): Promise<Sandbox> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "2dfs-builder-test-"));
  const env = {
    ...process.env,
    PATH: `${path.join(ROOT, "node_modules/.bin")}:${process.env.PATH}`,
    XDG_CACHE_HOME: path.join(dir, "cache"),
    XDG_DATA_HOME: path.join(dir, "data"),
  };
  const run = (args: string[], cwd = dir): CliRun => {
    const r = spawnSync("node", [CLI, ...args], { cwd, env, encoding: "utf8" });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  return {
    dir,
    env,
    run,
    json<T>(args: string[], cwd?: string): T {
      const r = run([...args, "--json"], cwd);
      if (r.status !== 0) throw new Error(`2dfs-push ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
      return JSON.parse(r.stdout) as T;
    },
    async copyFixture(name, as) {
      const to = path.join(dir, as);
      await cp(path.join(FIXTURES, name), to, { recursive: true });
      return to;
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

export async function readJson<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(file, "utf8")) as T;
}

/** What `build --json` prints (the fields the tests look at). */
export interface BuildOutput {
  digest: string;
  layout: string;
  rebuilt: number;
  cached: number;
  field: { digest: string; size: number };
  allotments: {
    row: number;
    col: number;
    digest: string;
    diffid: string;
    size: number;
    mediaType: string;
    cached: boolean;
  }[];
}
