/**
 * `npm run bench`: every benchmark, one after another (they would disturb each other's timings if
 * run at once). Each prints its own figures and ratios against a peer measured in the same run.
 * `npm run bench -- registry partition` runs only those.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const ALL = ["registry", "cpu", "partition", "build", "push", "load", "signing", "edge", "upstream"] as const;
const wanted = process.argv.slice(2);
const chosen = wanted.length > 0 ? ALL.filter((b) => wanted.includes(b)) : [...ALL];
let failed = 0;
for (const name of chosen) {
  const script = fileURLToPath(new URL(`./${name}.ts`, import.meta.url));
  console.log(`\n=== bench: ${name} ===`);
  const r = spawnSync(process.execPath, [script], { stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`bench ${name} failed (exit ${r.status ?? r.signal})`);
    failed++;
  }
}
process.exit(failed > 0 ? 1 : 0);
