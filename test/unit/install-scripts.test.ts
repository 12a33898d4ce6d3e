/**
 * npm 11 asks a project to approve each dependency's install scripts (`allowScripts` in
 * package.json) and warns about the rest; a stricter npm skips them. Three of ours must run:
 * `node` fetches the Node 24 that npm scripts use, `workerd` and `esbuild` check their native
 * binaries. npm itself says what is left unreviewed, and for the approved ones the scripts' work
 * is there.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT, run } from "../helpers/process.ts";

describe("install scripts", () => {
  it("npm finds no install script that package.json leaves unreviewed", async () => {
    const { stdout } = await run("npm", ["install-scripts", "ls", "--json"]);
    expect(JSON.parse(stdout)).toEqual({ allowScripts: [] });
  });

  it("approves esbuild, node and workerd by name, so an upgrade keeps their scripts running", () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as {
      allowScripts?: Record<string, boolean>;
    };
    expect(pkg.allowScripts).toEqual({ esbuild: true, node: true, workerd: true });
  });

  it("ran them: node_modules holds the Node 24 binary that node's preinstall fetched", async () => {
    const bin = join(REPO_ROOT, "node_modules", ".bin", "node");
    expect(existsSync(bin)).toBe(true);
    const { stdout } = await run(bin, ["--version"]);
    expect(stdout).toMatch(/^v24\./);
  });
});
