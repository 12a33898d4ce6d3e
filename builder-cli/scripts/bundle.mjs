/**
 * Bundles the CLI and the shared core/ into dist/ as plain JavaScript, because Node never strips
 * types under node_modules. npm packages stay external (they are the package's `dependencies`);
 * each command is its own chunk, loaded only when it runs.
 *
 * npm runs it on `prepack` (what `npm pack` ships) and on `prepare` (so `npm ci` in a checkout
 * leaves a working `npx 2dfs-push`). Plain JavaScript, not TypeScript: `npm ci` may run it on
 * whatever Node the machine has before the project's own Node 24 is in place.
 */
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(await readFile(path.join(root, "package.json"), "utf8"));
// `engines.node` is ">=22.15": the syntax the bundle may use is what that Node runs.
const minNode = /^>=\s*(\d+(?:\.\d+)*)$/.exec(pkg.engines.node)?.[1];
if (!minNode) throw new Error(`package.json engines.node "${pkg.engines.node}" is not >=X.Y`);

/** The CLI imports package.json for its version: ship that field, not the scripts and dev tools. */
const versionOnly = {
  name: "package-version-only",
  setup(b) {
    b.onLoad({ filter: /[\\/]package\.json$/ }, async (args) => {
      const { version } = JSON.parse(await readFile(args.path, "utf8"));
      return { contents: JSON.stringify({ version }), loader: "json" };
    });
  },
};

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
  target: `node${minNode}`,
  packages: "external",
  chunkNames: "chunks/[name]-[hash]",
  minifySyntax: true,
  legalComments: "none",
  metafile: true,
  plugins: [versionOnly],
  logLevel: "warning",
});
const files = Object.values(result.metafile.outputs);
const bytes = files.reduce((n, o) => n + o.bytes, 0);
console.log(`bundled ${files.length} files, ${bytes} bytes, into ${path.relative(process.cwd(), outdir) || "."}`);
