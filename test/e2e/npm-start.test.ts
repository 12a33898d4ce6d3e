/**
 * `npm start` (scripts/serve.ts), run the way a user runs it: `npm start -- --port ...` in the
 * repository. It serves the deploy's bundle in one workerd, with no proxy in front; its store is
 * laid out as `wrangler dev --persist-to` lays it out, so `npm start` and `npm run dev` share it.
 *
 *   - a 2DFS image pushed to it pulls back through containerd as a partition, with exactly the
 *     partition's files, and through skopeo byte for byte; every request is in its log;
 *   - one workerd process serves it, not two;
 *   - what it stored survives a restart, and `wrangler dev` on the same directory serves it too,
 *     and the other way round;
 *   - Ctrl-C stops it and its workerd, and frees the port;
 *   - it warns when it listens beyond loopback with no auth;
 *   - bad flags get the usage and exit code 2, before anything starts.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findWorkerd } from "../helpers/workerd-proc.ts";
import { anImage } from "../helpers/images/builder.ts";
import { layoutTop, OciLayout, writeImage, type WrittenImage } from "../helpers/images/layout.ts";
import { overHttp, push } from "../helpers/images/push.ts";
import { expectedFiles, type Cell } from "../helpers/images/selection.ts";
import { startContainerd } from "../helpers/containerd.ts";
import { parseRequestLog } from "../helpers/request-log.ts";
import { REPO_ROOT, run, sleep } from "../helpers/process.ts";
import * as skopeo from "../helpers/skopeo.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";

const REPO = "start/model";
/** `0.1.1.1`: rows 0 to 1 of column 1. */
const LABEL = "0.1.1.1";
const CELLS: Cell[] = [
  [0, 1],
  [1, 1],
];

/**
 * Whether a process still runs: not when it is gone, nor when it is a zombie (in a container whose
 * init does not reap, an ended child of an ended parent stays one).
 */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** The process group `pid` belongs to (field 5 of /proc/<pid>/stat). */
function processGroupOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
}

let work: string;
let persistDir: string;
let img: WrittenImage;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "2dfs-e2e-npm-start-"));
  persistDir = join(work, "state");
  img = await writeImage(
    join(work, "src"),
    anImage()
      .randomLayers(2, 32 * 1024)
      .name(REPO)
      .platforms(["linux/amd64"])
      .grid(2, 2)
      .allotmentBytes(32 * 1024),
  );
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe("npm start", () => {
  let registry: Registry;

  beforeAll(async () => {
    registry = await startRegistry({ launcher: "npm start", persistDir });
    await push(overHttp(registry.url), REPO, img, "v1");
  });

  afterAll(async () => {
    await registry?.stop();
  });

  it("says it is open, on loopback only, without a warning or an error, on a machine with no internet", () => {
    expect(registry.log()).toContain("open to anyone (AUTH_MODE=none)");
    // Nothing from the registry or Miniflare at warn level or above, and no stack trace.
    expect(registry.log()).not.toMatch(/\[registry:(warn|error)\]|registry: warning|^Error/m);
  });

  it("serves from one workerd process: no proxy Worker in front", () => {
    const workerd = findWorkerd(registry.port);
    expect(workerd.worker).toBeGreaterThan(0);
    expect(workerd.proxy).toBeUndefined();
  });

  it("hands containerd a partition with exactly its files", async () => {
    const containerd = await startContainerd();
    try {
      const ref = `${registry.host}/${REPO}:v1--${LABEL}`;
      await containerd.pull(ref, { platform: "linux/amd64" });
      expect(await containerd.files(ref, "linux/amd64")).toEqual(expectedFiles(img.platforms[0]!, CELLS));
    } finally {
      await containerd.stop();
    }
  });

  it("round-trips the image through skopeo byte for byte, and logs every request", async () => {
    const out = join(work, "out");
    await skopeo.copy(`docker://${registry.host}/${REPO}:v1`, `oci:${out}:v1`, { all: true, preserveDigests: true });
    expect((await layoutTop(out, "v1")).digest).toBe(img.digest);
    const back = new OciLayout(out);
    const digests = await back.blobDigests();
    expect(digests.length).toBeGreaterThan(4);
    for (const digest of digests) {
      expect((await back.readBlob(digest)).equals(await img.layout.readBlob(digest)), digest).toBe(true);
    }
    const logged = parseRequestLog(registry.log());
    expect(logged.some((r) => r.method === "PUT" && r.path === `/v2/${REPO}/manifests/v1` && r.status === 201)).toBe(
      true,
    );
    expect(logged.some((r) => r.method === "GET" && r.path.startsWith(`/v2/${REPO}/blobs/`) && r.status === 200)).toBe(
      true,
    );
  });
});

describe("the store, across restarts and with `npm run dev`", () => {
  it("keeps what npm start stored, serves it under wrangler dev, and the other way round", async () => {
    const pullTop = async (r: Registry, ref: string): Promise<number> => {
      const res = await fetch(`${r.url}/v2/${REPO}/manifests/${ref}`, {
        headers: { Accept: "application/vnd.oci.image.index.v1+json" },
      });
      await res.body?.cancel();
      return res.status;
    };
    const dev = await startRegistry({ launcher: "wrangler dev", persistDir });
    try {
      expect(await pullTop(dev, "v1")).toBe(200);
      expect(await pullTop(dev, `v1--${LABEL}`)).toBe(200);
      // Pushed under wrangler dev, for npm start to find.
      await push(overHttp(dev.url), REPO, img, "v2");
    } finally {
      await dev.stop();
    }
    const again = await startRegistry({ launcher: "npm start", persistDir });
    try {
      expect(await pullTop(again, "v1")).toBe(200);
      expect(await pullTop(again, "v2")).toBe(200);
      expect(await pullTop(again, "v3")).toBe(404);
    } finally {
      await again.stop();
    }
  });
});

describe("npm start as a user stops it", () => {
  it("stops on Ctrl-C: npm exits, workerd with it, and the port is free again", async () => {
    const dir = join(work, "ctrl-c");
    const registry = await startRegistry({ launcher: "npm start", persistDir: dir });
    try {
      const workerd = findWorkerd(registry.port).worker;
      // The helper starts npm as the leader of its own process group, as a terminal would: Ctrl-C
      // signals that whole group (npm, node and workerd).
      const npm = processGroupOf(workerd);
      process.kill(-npm, "SIGINT");
      const deadline = Date.now() + 10_000;
      while ((running(npm) || running(workerd)) && Date.now() < deadline) await sleep(100);
      expect(running(npm)).toBe(false);
      expect(running(workerd)).toBe(false);
      await expect(fetch(`${registry.url}/v2/`)).rejects.toThrow();
    } finally {
      await registry.stop();
    }
    // What it persisted is there for the next start.
    expect(await readdir(join(dir, "v3"))).toContain("r2");
  });

  it("warns when it listens beyond this machine with no auth, and only then", async () => {
    const open = await startRegistry({ launcher: "npm start", args: ["--ip=0.0.0.0"] });
    try {
      expect(open.log()).toContain("registry: warning: --ip 0.0.0.0 with no auth: anyone who can reach this machine");
    } finally {
      await open.stop();
    }
    const closed = await startRegistry({ launcher: "npm start", args: ["--ip=0.0.0.0"], vars: { AUTH_MODE: "token" } });
    try {
      expect(closed.log()).toContain("AUTH_MODE=token");
      expect(closed.log()).not.toContain("registry: warning");
    } finally {
      await closed.stop();
    }
  });

  it.each([
    [["--port", "eighty"], "--port eighty is not a port number"],
    [["--var", "AUTH_MODE"], "--var AUTH_MODE: expected KEY:VALUE"],
    [["--inspector-port", "9229"], "Unknown option '--inspector-port'"],
  ])("refuses %j with the usage and exit code 2", async (args, message) => {
    const r = await run("npm", ["start", "--silent", "--", ...args], { cwd: REPO_ROOT, allowFailure: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`npm start: ${message}`);
    expect(r.stderr).toContain("usage: npm start");
  });
});
