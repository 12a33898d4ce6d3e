/**
 * A push on a real terminal: `2dfs-push push` runs in a tmux pane (so stderr is a TTY and the
 * progress bars are drawn) against `wrangler dev`, and the screen is read back with capture-pane.
 * Every blob the summary counts has its `uploaded` line on screen and no bar is left behind.
 * Whether a line logged just before the end got lost depended on timing; the deterministic check
 * of that is the renderer test (test/unit/builder-progress.test.ts). This one shows the whole
 * thing on a terminal.
 */
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run, sleep } from "../helpers/process.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";
import { CLI, cliSandbox, randomFile, type CliSandbox } from "./builder-cli.ts";

const SESSION = `2dfs-tty-${process.pid}`;

function tmux(args: string[]): Promise<{ stdout: string }> {
  return run("tmux", args);
}

describe("2dfs-push push on a terminal (tmux)", () => {
  let registry: Registry;
  let sandbox: CliSandbox;
  let model: string;

  beforeAll(async () => {
    sandbox = await cliSandbox();
    [registry, model] = await Promise.all([startRegistry(), sandbox.fixture("2x2", "model")]);
    // Several small allotments and one of 20 MB, so bars are drawn while lines are logged.
    await randomFile(join(model, "weights.bin"), 20_000_000);
    await writeFile(join(model, "extra.txt"), randomBytes(2048).toString("hex"));
    const spec = JSON.parse(await readFile(join(model, "2dfs.json"), "utf8")) as { allotments: object[] };
    spec.allotments.push({ src: "weights.bin", dst: "/model/weights.bin", row: 2, col: 0 });
    spec.allotments.push({ src: "extra.txt", dst: "/model/extra.txt", row: 2, col: 1 });
    await writeFile(join(model, "2dfs.json"), JSON.stringify(spec));
    const built = await sandbox.run(["build", "scratch", `${registry.host}/tty/model:v1`], { cwd: model });
    expect(built.code, built.stderr).toBe(0);
  });

  afterAll(async () => {
    await tmux(["kill-session", "-t", SESSION]).catch(() => {});
    await Promise.all([registry?.stop(), sandbox?.cleanup()]);
  });

  it("shows one uploaded line per blob the summary counts, and no bar afterwards", async () => {
    const env = Object.entries(sandbox.env)
      .filter(([k]) => /^(HOME|PATH|XDG_[A-Z_]+|NO_COLOR)$/.test(k))
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(" ");
    const command = `env ${env} node ${JSON.stringify(CLI)} push ${registry.host}/tty/model:v1; echo "EXIT:$?"; sleep 600`;
    await tmux(["new-session", "-d", "-s", SESSION, "-x", "160", "-y", "50", "bash", "-c", command]);
    let screen = "";
    for (let i = 0; i < 200 && !/EXIT:\d+/.test(screen); i++) {
      await sleep(100);
      screen = (await tmux(["capture-pane", "-p", "-J", "-S", "-", "-t", SESSION])).stdout;
    }
    expect(screen).toMatch(/EXIT:0/);
    const summary = /pushed sha256:[0-9a-f]{64}: (\d+) blobs, (\d+) uploaded/.exec(screen);
    expect(summary, screen).not.toBeNull();
    const [total, uploaded] = [Number(summary![1]), Number(summary![2])];
    expect(uploaded).toBe(total);
    const lines = screen.match(/^uploaded sha256:[0-9a-f]{12}… .+$/gm) ?? [];
    expect(lines, screen).toHaveLength(total);
    expect(new Set(lines.map((l) => l.slice(0, 29))).size).toBe(total);
    // Finished bars are cleared: no progress bar is left on the screen.
    expect(screen).not.toMatch(/[░█]{5}/);
  });
});
