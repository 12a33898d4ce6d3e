/**
 * `npm pack` runs this (prepack): bundles the CLI and the shared core/ into dist/ as plain
 * JavaScript, because Node never strips types under node_modules. npm packages stay external
 * (they are the package's `dependencies`); each command is its own chunk, loaded only when it runs.
 */
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";
import { MIN_NODE } from "../src/cli/node-version.ts";

/** The CLI imports package.json for its version: ship that field, not the scripts and dev tools. */
const versionOnly: Plugin = {
  name: "package-version-only",
  setup(b) {
    b.onLoad({ filter: /[\\/]package\.json$/ }, async (args) => {
      const { version } = JSON.parse(await readFile(args.path, "utf8")) as { version: string };
      return { contents: JSON.stringify({ version }), loader: "json" };
    });
  },
};

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const outdir = path.join(root, "dist");
await rm(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { "2dfs-push": "bin/2dfs-push.ts" },
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: `node${MIN_NODE.join(".")}`,
  packages: "external",
  chunkNames: "chunks/[name]-[hash]",
  minifySyntax: true,
  legalComments: "none",
  metafile: true,
  plugins: [versionOnly],
  logLevel: "warning",
});
const files = Object.entries(result.metafile.outputs);
const bytes = files.reduce((n, [, o]) => n + o.bytes, 0);
console.log(`bundled ${files.length} files, ${bytes} bytes, into ${path.relative(process.cwd(), outdir) || "."}`);
