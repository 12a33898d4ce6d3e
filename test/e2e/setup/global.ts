/**
 * Runs once before the end-to-end suite: every real program the tests drive must be installed,
 * and a missing one fails the run up front with the command that installs it, rather than as a
 * confusing spawn error deep inside a test.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../../helpers/process.ts";

/** binary -> Debian package that provides it. */
const REQUIRED: Record<string, string> = {
  skopeo: "skopeo",
  containerd: "containerd",
  ctr: "containerd",
  "docker-registry": "docker-registry",
  curl: "curl",
  pigz: "pigz",
  zstd: "zstd",
  chromium: "chromium",
  tmux: "tmux",
  htpasswd: "apache2-utils",
};

function onPath(bin: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${bin}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export default function setup(): void {
  const missing = Object.keys(REQUIRED).filter((bin) => !onPath(bin));
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((b) => REQUIRED[b]))].join(" ");
    throw new Error(
      `end-to-end tests need ${missing.join(", ")}, which are not installed.\n` +
        `Install them with: apt-get update && apt-get install -y ${packages}`,
    );
  }
  if (!existsSync(join(REPO_ROOT, "node_modules", "wrangler", "bin", "wrangler.js"))) {
    throw new Error("wrangler is not installed in node_modules: run `npm ci` first");
  }
}
