/**
 * `2dfs-push` as a laptop user gets it: `npm pack --workspace builder-cli` (its prepack bundles the
 * CLI and core/ into plain JavaScript), the tarball installed into an empty prefix outside the
 * repository, and the installed program, on the Node this suite runs (24), building and pushing
 * from a model directory next to that prefix. containerd then pulls a named partition of the
 * pushed image, and the unpacked snapshot holds exactly that partition's files.
 */
import { spawnSync } from "node:child_process";
import { chmod, cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, delimiter, dirname, join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listFiles, startContainerd, type Containerd } from "../helpers/containerd.ts";
import { REPO_ROOT, run, type RunResult } from "../helpers/process.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";
import { BUILDER_FIXTURES, cliSandbox, type BuildPushOutput, type CliSandbox } from "./builder-cli.ts";
import builderPackage from "../../builder-cli/package.json" with { type: "json" };

const REPO = "laptop/model";
const PLATFORM = "linux/amd64";
/** test/fixtures/builder/2x2 names "weights": "1.0.1.1", the cells holding these files. */
const WEIGHTS = {
  "model/layers/0.bin": "model/layers/0.bin",
  "model/layers/1.bin": "model/layers/1.bin",
  "model/head.bin": "model/head.bin",
};

/** npm with this suite's Node first on PATH and none of the `npm run` variables of an outer npm. */
function npmEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^npm_/i.test(k)) env[k] = v;
  env.PATH = [dirname(process.execPath), process.env.PATH].filter(Boolean).join(delimiter);
  return env;
}

function npm(args: string[], cwd: string): Promise<RunResult> {
  return run("npm", [...args, "--no-audit", "--no-fund", "--prefer-offline"], { cwd, env: npmEnv() });
}

describe("the packed 2dfs-push installed outside the repository", () => {
  let work: string;
  let tarball: string;
  let bin: string;
  let registry: Registry;
  let containerd: Containerd;
  let sandbox: CliSandbox;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "2dfs-e2e-package-"));
    expect(relative(REPO_ROOT, work).startsWith("..")).toBe(true);
    const packed = await npm(["pack", "--workspace", "builder-cli", "--pack-destination", work, "--json"], REPO_ROOT);
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as { filename: string }[];
    tarball = join(work, info!.filename);
    const prefix = join(work, "prefix");
    await mkdir(prefix);
    await npm(["install", "--prefix", prefix, tarball], work);
    bin = join(prefix, "node_modules", ".bin", "2dfs-push");
    sandbox = await cliSandbox({ bin });
    [registry, containerd] = await Promise.all([startRegistry(), startContainerd()]);
  });

  afterAll(async () => {
    await Promise.all([registry?.stop(), containerd?.stop(), sandbox?.cleanup()]);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("is a publishable package of built JavaScript, README and LICENSE", async () => {
    expect(tarball.endsWith(`2dfs-push-${builderPackage.version}.tgz`)).toBe(true);
    const listing = spawnSync("tar", ["-tzf", tarball], { encoding: "utf8" }).stdout.trim().split("\n").sort();
    expect(listing).toContain("package/dist/2dfs-push.js");
    expect(listing).toContain("package/README.md");
    expect(listing).toContain("package/LICENSE");
    expect(listing).toContain("package/package.json");
    // Nothing but what runs: no TypeScript sources, tests or build scripts.
    const other = listing.filter((f) => !/^package\/(dist\/.+\.js|README\.md|LICENSE|package\.json)$/.test(f));
    expect(other).toEqual([]);
    const installed = JSON.parse(
      await readFile(join(work, "prefix", "node_modules", "2dfs-push", "package.json"), "utf8"),
    ) as { private?: boolean; bin: Record<string, string>; dependencies: Record<string, string> };
    expect(installed.private).toBeUndefined();
    expect(installed.bin["2dfs-push"]).toBe("dist/2dfs-push.js");
    expect(Object.keys(installed.dependencies).sort()).toEqual([
      "@noble/ciphers",
      "cli-progress",
      "commander",
      "p-limit",
      "picomatch",
      "tar-stream",
      "zod",
    ]);
    // core/ is compiled in: no chunk reaches outside the package.
    for (const f of await readdir(join(work, "prefix", "node_modules", "2dfs-push", "dist"), { recursive: true })) {
      if (!f.endsWith(".js")) continue;
      const code = await readFile(join(work, "prefix", "node_modules", "2dfs-push", "dist", f), "utf8");
      expect(code, f).not.toMatch(/from\s*["']\.\.\/\.\.\/|\.ts["']/);
    }
  });

  it("prints its version and help", async () => {
    const version = await sandbox.run(["--version"]);
    expect(version).toMatchObject({ code: 0, stdout: `${builderPackage.version}\n` });
    const help = await sandbox.run(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/build \[options\] <BASE> <TARGET>/);
  });

  it("runs from the tarball with npx in an empty directory", async () => {
    const dir = join(work, "npx");
    await mkdir(dir);
    await cp(tarball, join(dir, basename(tarball)));
    const r = await run("npx", ["--yes", `./${basename(tarball)}`, "--version"], { cwd: dir, env: npmEnv() });
    expect(r.stdout).toBe(`${builderPackage.version}\n`);
  });

  it("names the Node it needs on an older one, and exits at once", async () => {
    // Node reports itself as 20.11.0: the check runs before anything else is loaded.
    const fake = join(work, "old-node.mjs");
    await writeFile(
      fake,
      'Object.defineProperty(process, "versions", { value: { ...process.versions, node: "20.11.0" } });\n',
    );
    const r = spawnSync(process.execPath, ["--import", fake, bin, "--version"], { encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^2dfs-push needs Node\.js 22\.15 or later; this is Node\.js 20\.11\.0\./);
    expect(builderPackage.engines.node).toBe(">=22.15");
  });

  it("makes keys, signs a push and verifies a partition from the tarball", async () => {
    const keys = join(work, "keys");
    const made = await sandbox.run(["key", "generate", "--output", keys, "--passphrase-stdin"], { input: "pw" });
    expect(made.code, made.stderr).toBe(0);
    const model = join(work, "signed-model");
    await cp(join(BUILDER_FIXTURES, "2x2"), model, { recursive: true });
    const pushed = await sandbox.run(
      ["build", "scratch", `${registry.host}/${REPO}-signed:v1`, "--push", "--sign", join(keys, "cosign.key")],
      { cwd: model, env: { TDFS_KEY_PASSPHRASE: "pw" } },
    );
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(pushed.stdout).toMatch(/signed \d+ manifest\(s\) with sha256:/);
    const verified = await sandbox.run([
      "verify",
      `${registry.host}/${REPO}-signed:v1--weights`,
      "--key",
      join(keys, "cosign.pub"),
    ]);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/^verified /m);
  });

  it("builds and pushes from the model's directory; containerd pulls a named partition", async () => {
    const model = join(work, "my-model");
    await cp(join(BUILDER_FIXTURES, "2x2"), model, { recursive: true });
    await chmod(model, 0o755);
    const pushed = await sandbox.json<BuildPushOutput>(["build", "scratch", `${registry.host}/${REPO}:v1`, "--push"], {
      cwd: model,
    });
    expect(pushed.push.digest).toBe(pushed.build.digest);
    expect(pushed.build.allotments).toHaveLength(4);

    const ref = `${registry.host}/${REPO}:v1--weights`;
    await containerd.pull(ref, { platform: PLATFORM });
    const root = await containerd.rootfs(ref, PLATFORM);
    expect(await listFiles(root)).toEqual(Object.keys(WEIGHTS).sort());
    for (const [path, source] of Object.entries(WEIGHTS)) {
      expect(await readFile(join(root, path)), path).toEqual(await readFile(join(model, source)));
    }
  });
});
