/**
 * The registry under `wrangler dev`, served from a bundle built once at start. A plain
 * `wrangler dev` in the working tree rebuilds and restarts the Worker whenever a source file
 * changes, which cuts every response in flight: on a tree that others edit during a long
 * benchmark, that showed up as truncated pulls. A bundle in a directory of its own (with a copy
 * of wrangler.toml pointing at it) holds still, and every figure of a run measures the same code.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT, run } from "../test/helpers/process.ts";
import { startRegistry, type Registry, type RegistryOptions } from "../test/helpers/wrangler-dev.ts";

const WRANGLER_JS = join(REPO_ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

/** `sourceDir`: the tree whose Worker is bundled (this checkout by default; another, to compare versions). */
export async function startSnapshotRegistry(
  opts: Omit<RegistryOptions, "projectDir"> & { sourceDir?: string } = {},
): Promise<Registry> {
  const source = opts.sourceDir ?? REPO_ROOT;
  const dir = await mkdtemp(join(tmpdir(), "2dfs-bench-worker-"));
  try {
    await run(process.execPath, [WRANGLER_JS, "deploy", "--dry-run", `--outdir=${join(dir, "dist")}`], {
      cwd: source,
      env: { CI: "true", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
    });
    const toml = await readFile(join(source, "wrangler.toml"), "utf8");
    if (!/^main = .*$/m.test(toml)) throw new Error("wrangler.toml has no main = line");
    await writeFile(
      join(dir, "wrangler.toml"),
      toml.replace(/^main = .*$/m, 'main = "dist/index.js"\nno_bundle = true'),
    );
    const registry = await startRegistry({ ...opts, projectDir: dir });
    return {
      ...registry,
      stop: async () => {
        await registry.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
