/**
 * The `2dfs-push` CLI run as a user runs it, for the builder's end-to-end tests: a subprocess on
 * the Node that runs the tests, in a sandbox whose HOME and XDG directories (cache, image store,
 * upload state) are private temp dirs, with no registry credentials leaking in from the
 * environment of whoever runs the suite.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createHash, randomFillSync } from "node:crypto";
import { createWriteStream } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import type { BuildResult } from "../../builder-cli/src/build/build.ts";
import type { PushReport } from "../../builder-cli/src/registry/image.ts";
import type { UploadSession } from "../../builder-cli/src/registry/upload-state.ts";
import { REPO_ROOT, tail, type RunResult } from "../helpers/process.ts";

export const CLI = join(REPO_ROOT, "builder-cli", "bin", "2dfs-push.ts");
export const BUILDER_FIXTURES = join(REPO_ROOT, "test", "fixtures", "builder");

export type { BuildResult, PushReport };
/** What `build --push --json` prints. */
export interface BuildPushOutput {
  build: BuildResult;
  push: PushReport;
}

/** Variables that would hand the CLI someone's credentials or config; never passed through. */
const SCRUBBED = ["TDFS_USERNAME", "TDFS_PASSWORD", "DOCKER_CONFIG", "XDG_CONFIG_HOME"];

export interface CliOptions {
  cwd?: string;
  /** Written to stdin (for --password-stdin). */
  input?: string;
  /** Extra environment, on top of the sandbox's. */
  env?: Record<string, string>;
}

export interface CliSandbox {
  dir: string;
  home: string;
  /** $XDG_STATE_HOME/2dfs-push/uploads: the open chunked uploads a push remembers. */
  uploadStateDir: string;
  env: Record<string, string>;
  /** Runs `2dfs-push ARGS`; never throws on a non-zero exit (the test looks at `code`). */
  run(args: readonly string[], opts?: CliOptions): Promise<RunResult>;
  /** Runs `2dfs-push ARGS --json`, fails unless it exits 0, and parses stdout. */
  json<T>(args: readonly string[], opts?: CliOptions): Promise<T>;
  /** Starts `2dfs-push ARGS` and hands back the process (to kill it half-way). */
  spawn(args: readonly string[], opts?: CliOptions): ChildProcessWithoutNullStreams;
  /** Copies test/fixtures/builder/<name> into the sandbox. */
  fixture(name: string, as?: string): Promise<string>;
  /** The upload sessions saved under the state directory right now. */
  uploadSessions(): Promise<UploadSession[]>;
  cleanup(): Promise<void>;
}

export interface SandboxOptions {
  /**
   * An installed `2dfs-push` to run as a program (its `#!/usr/bin/env node` finds the Node this
   * suite runs on, put first on PATH); by default the CLI runs from its sources.
   */
  bin?: string;
}

export async function cliSandbox(opts: SandboxOptions = {}): Promise<CliSandbox> {
  const dir = await mkdtemp(join(tmpdir(), "2dfs-e2e-builder-"));
  const home = join(dir, "home");
  await mkdir(home);
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !SCRUBBED.includes(k)) base[k] = v;
  const env = {
    ...base,
    HOME: home,
    XDG_CACHE_HOME: join(dir, "cache"),
    XDG_DATA_HOME: join(dir, "data"),
    XDG_STATE_HOME: join(dir, "state"),
    NO_COLOR: "1",
    PATH: [dirname(process.execPath), base.PATH].filter(Boolean).join(delimiter),
  };
  const uploadStateDir = join(dir, "state", "2dfs-push", "uploads");

  const start = (args: readonly string[], o: CliOptions = {}): ChildProcessWithoutNullStreams =>
    spawn(opts.bin ?? process.execPath, opts.bin ? args : [CLI, ...args], {
      cwd: o.cwd ?? dir,
      env: { ...env, ...o.env },
      stdio: ["pipe", "pipe", "pipe"],
    });

  const run = (args: readonly string[], opts: CliOptions = {}): Promise<RunResult> =>
    new Promise((resolve, reject) => {
      const child = start(args, opts);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on("data", (b: Buffer) => out.push(b));
      child.stderr.on("data", (b: Buffer) => err.push(b));
      child.on("error", reject);
      child.on("close", (code, signal) =>
        resolve({
          stdout: Buffer.concat(out).toString("utf8"),
          stderr: Buffer.concat(err).toString("utf8"),
          code: code ?? (signal ? 128 : 1),
        }),
      );
      child.stdin.end(opts.input ?? "");
    });

  return {
    dir,
    home,
    uploadStateDir,
    env,
    run,
    async json<T>(args: readonly string[], opts?: CliOptions): Promise<T> {
      const r = await run([...args, "--json"], opts);
      if (r.code !== 0) throw new Error(`2dfs-push ${args.join(" ")} exited ${r.code}:\n${tail(r.stderr, 30)}`);
      return JSON.parse(r.stdout) as T;
    },
    spawn: start,
    async fixture(name, as = name) {
      const to = join(dir, as);
      await cp(join(BUILDER_FIXTURES, name), to, { recursive: true });
      return to;
    },
    async uploadSessions() {
      const names = await readdir(uploadStateDir).catch(() => [] as string[]);
      const sessions: UploadSession[] = [];
      for (const n of names.filter((n) => n.endsWith(".json"))) {
        // A session file is replaced by rename, so a read sees a whole one or none.
        const text = await readFile(join(uploadStateDir, n), "utf8").catch(() => undefined);
        if (text) sessions.push(JSON.parse(text) as UploadSession);
      }
      return sessions;
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** HEAD of a blob: its status and Content-Length. */
export async function headBlob(
  url: string,
  repo: string,
  digest: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; size: number }> {
  const res = await fetch(`${url}/v2/${repo}/blobs/${digest}`, { method: "HEAD", headers });
  return { status: res.status, size: Number(res.headers.get("content-length")) };
}

/**
 * GETs a blob with node:http (which never decodes a Content-Encoding) and hashes it as it
 * streams: what the registry really holds, however large.
 */
export function fetchBlobDigest(
  url: string,
  repo: string,
  digest: string,
): Promise<{ status: number; bytes: number; digest: string; contentLength: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v2/${repo}/blobs/${digest}`, (res) => {
      const hash = createHash("sha256");
      let bytes = 0;
      res.on("data", (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.byteLength;
      });
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          bytes,
          digest: `sha256:${hash.digest("hex")}`,
          contentLength: res.headers["content-length"],
        }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * Every blob the manifests of a built image name: configs and layers, the field included. The
 * allotments are named only inside the field; take them from the build output.
 */
export async function imageBlobDigests(layout: string, indexDigest: string): Promise<string[]> {
  const read = async (d: string): Promise<unknown> =>
    JSON.parse(await readFile(join(layout, "blobs", "sha256", d.slice(7)), "utf8"));
  const index = (await read(indexDigest)) as { manifests: { digest: string }[] };
  const out = new Set<string>();
  for (const m of index.manifests) {
    const manifest = (await read(m.digest)) as { config: { digest: string }; layers: { digest: string }[] };
    out.add(manifest.config.digest);
    for (const l of manifest.layers) out.add(l.digest);
  }
  return [...out].sort();
}

/** Writes `bytes` random bytes to `file`, 1 MiB at a time. */
export async function randomFile(file: string, bytes: number): Promise<void> {
  const out = createWriteStream(file);
  for (let left = bytes; left > 0;) {
    const n = Math.min(left, 1 << 20);
    left -= n;
    if (!out.write(randomFillSync(Buffer.allocUnsafe(n)))) await new Promise<void>((r) => out.once("drain", () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
}
