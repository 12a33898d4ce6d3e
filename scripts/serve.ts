/**
 * `npm start`: the registry on this machine, in workerd, with R2, KV and the Cache API on disk.
 *
 * It runs the very bundle `wrangler deploy` would upload (built by `wrangler deploy --dry-run`),
 * with the bindings wrangler.toml declares, through Miniflare directly. `wrangler dev` (`npm run
 * dev`) runs the same Worker but puts a proxy Worker, in a second workerd process, in front of it,
 * for live reload and the inspector; every byte of every pull crosses both processes. A local
 * registry serves gigabytes and needs neither, so this is the lean path: one workerd, one copy of
 * each response. README, "Benchmarks", has the figures.
 *
 * Storage is kept where `wrangler dev --persist-to .wrangler/state` keeps it, so `npm start` and
 * `npm run dev` see the same images.
 *
 *   npm start [-- --ip 127.0.0.1 --port 8787 --persist-to .wrangler/state
 *                 --var KEY:VALUE ... --env-file FILE ...]
 *
 * It opens the registry (AUTH_MODE=none), on purpose, and says so; it turns blob caching off
 * (locally the Cache API is one more copy on the same disk). `--var AUTH_MODE:token` with the
 * secrets in `.dev.vars` runs it as the deploy runs (docs/auth.md). `--env-file`, as with `wrangler
 * dev`, reads secrets from the files named instead of `.dev.vars`: unlike a `--var`, a secret there
 * is not echoed by npm with the command line nor seen in the process list.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Log, LogLevel, Miniflare, convertV4MiniflareOptions, type MiniflareOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions, unstable_readConfig } from "wrangler";

// The project is where npm runs its scripts: wrangler.toml, .dev.vars and node_modules there.
const ROOT = process.cwd();
const WRANGLER_JS = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
const USAGE = `usage: npm start [-- --ip ADDRESS] [--port N] [--persist-to DIR] [--var KEY:VALUE]... [--env-file FILE]...`;

/** What `npm start` sets unless `--var` says otherwise. */
const LOCAL_VARS: Readonly<Record<string, string>> = { AUTH_MODE: "none", CACHE_MAX_BLOB_BYTES: "0" };

function fail(message: string, code = 2): never {
  console.error(`npm start: ${message}`);
  process.exit(code);
}

interface CommandLine {
  ip: string;
  port: number;
  persistTo: string;
  vars: Record<string, string>;
  envFiles: string[];
}

function parseCommandLine(): CommandLine {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        ip: { type: "string", default: "127.0.0.1" },
        port: { type: "string", default: process.env.PORT ?? "8787" },
        "persist-to": { type: "string", default: ".wrangler/state" },
        var: { type: "string", multiple: true, default: [] },
        "env-file": { type: "string", multiple: true, default: [] },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    fail(`${(e as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port ${values.port} is not a port number\n${USAGE}`);
  const vars: Record<string, string> = { ...LOCAL_VARS };
  for (const kv of values.var) {
    const at = kv.indexOf(":");
    if (at <= 0) fail(`--var ${kv}: expected KEY:VALUE\n${USAGE}`);
    vars[kv.slice(0, at)] = kv.slice(at + 1);
  }
  // wrangler passes over a missing env file without a word; a secret left out that way shows
  // up only later, as a 401 or a 503, so a wrong path stops here.
  for (const f of values["env-file"]) if (!existsSync(f)) fail(`--env-file ${f}: no such file\n${USAGE}`);
  return {
    ip: values.ip,
    port,
    persistTo: resolve(values["persist-to"]),
    vars,
    envFiles: values["env-file"].map((f) => resolve(f)),
  };
}

/** Whether only this machine can reach `ip`. */
function isLoopback(ip: string): boolean {
  return ip === "localhost" || ip === "::1" || ip.startsWith("127.");
}

const args = parseCommandLine();

// The deploy's bundle, read into memory: nothing here rebuilds or restarts it when a source file
// changes, so an edit in the tree never cuts a pull in flight, and nothing is left on disk to
// clean up however the server ends.
const bundleDir = await mkdtemp(join(tmpdir(), "2dfs-serve-"));
const built = spawnSync(process.execPath, [WRANGLER_JS, "deploy", "--dry-run", `--outdir=${bundleDir}`], {
  cwd: ROOT,
  env: { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
  encoding: "utf8",
});
const bundle = built.status === 0 ? await readFile(join(bundleDir, "index.js"), "utf8") : undefined;
await rm(bundleDir, { recursive: true, force: true });
if (bundle === undefined) fail(`bundling the Worker failed:\n${built.stdout}${built.stderr}`, 1);

// Bindings, vars, compatibility date and flags, and the secrets in `.dev.vars`, read by
// wrangler itself from wrangler.toml, as `wrangler dev` reads them.
const config = unstable_readConfig({ config: join(ROOT, "wrangler.toml") });
// `envFiles` is what `wrangler dev --env-file` hands the same function; its published type leaves
// it out. Given, wrangler reads those files (expanding `$NAME` in them) and not `.dev.vars`.
const { workerOptions } = unstable_getMiniflareWorkerOptions(config, undefined, {
  ...(args.envFiles.length > 0 ? { envFiles: args.envFiles } : {}),
} as Parameters<typeof unstable_getMiniflareWorkerOptions>[2]);
const options = convertV4MiniflareOptions({
  host: args.ip,
  port: args.port,
  // Under v3/ as wrangler dev lays it out, so the two share one store.
  resourcePersistencePath: join(args.persistTo, "v3"),
  log: new Log(LogLevel.INFO, { prefix: "registry" }),
  logRequests: true,
  // Request.cf with placeholder values: the Worker reads none of it, and fetching the real one
  // needs the internet, which fails with a stack trace on every start on a machine without it.
  cf: false,
  workers: [
    {
      ...workerOptions,
      name: config.name,
      // The bundle is one ES module with everything in it, so no rules are needed to find others;
      // its path only names it in stack traces.
      modulesRules: undefined,
      modules: [{ type: "ESModule", path: join(ROOT, "index.js"), contents: bundle }],
      bindings: { ...(workerOptions.bindings as Record<string, unknown>), ...args.vars },
    },
  ],
} as Parameters<typeof convertV4MiniflareOptions>[0]) satisfies MiniflareOptions;

// Miniflare stops workerd itself on exit, Ctrl-C included.
const mf = new Miniflare(options);
try {
  const url = await mf.ready;
  const auth = args.vars.AUTH_MODE === "none" ? "open to anyone (AUTH_MODE=none)" : `AUTH_MODE=${args.vars.AUTH_MODE}`;
  console.log(`registry: ready on ${url.origin}, ${auth}; R2 and KV in ${args.persistTo}`);
  if (args.vars.AUTH_MODE === "none" && !isLoopback(args.ip)) {
    console.warn(
      `registry: warning: --ip ${args.ip} with no auth: anyone who can reach this machine may push and delete ` +
        `(--var AUTH_MODE:token and .dev.vars close it; docs/auth.md)`,
    );
  }
} catch (e) {
  await mf.dispose().catch(() => undefined);
  fail(`the registry did not start: ${(e as Error).message}`, 1);
}
