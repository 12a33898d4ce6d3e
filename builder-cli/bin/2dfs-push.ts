#!/usr/bin/env node
/**
 * Entry point. It checks the Node version before anything else is loaded, so an older Node gets
 * a sentence naming the Node it needs instead of a syntax or missing-API error from deep inside.
 * Its one static import is the check itself (inlined by the bundle); everything else is loaded
 * after it. The packed CLI is this file bundled by scripts/bundle.mjs.
 */
import { MIN_NODE, nodeTooOld } from "../src/cli/node-version.ts";

if (nodeTooOld(process.versions.node)) {
  process.stderr.write(
    `2dfs-push needs Node.js ${MIN_NODE.join(".")} or later; this is Node.js ${process.versions.node}. ` +
      "Install a current Node.js (22 or 24 LTS) from https://nodejs.org or with your version manager.\n",
  );
  process.exit(1);
}
// Start-up counts when an incremental build takes well under a second: keep V8's compiled code.
process.getBuiltinModule?.("node:module").enableCompileCache?.();
await import("../src/cli/main.ts");
