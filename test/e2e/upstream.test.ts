/**
 * Images kept in another registry, partitioned here (docs/upstreams.md): the distribution registry
 * (Debian `docker-registry`) is the upstream, once open and once behind htpasswd, with a recording
 * proxy in front of it that writes down every request this registry makes to it. `2dfs-push`
 * pushes a 3 x 3 2DFS image on an ordinary base to the upstream; containerd pulls partitions
 * through this registry's `lab/` prefix, and the proxy's record shows what was fetched.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { anImage } from "../helpers/images/builder.ts";
import { writeImage, type WrittenImage } from "../helpers/images/layout.ts";
import { startContainerd, type Containerd } from "../helpers/containerd.ts";
import { startPeerRegistry, type PeerRegistry } from "../helpers/peer.ts";
import { run } from "../helpers/process.ts";
import { startRecordingProxy, type RecordingProxy, type SeenRequest } from "../helpers/recording-proxy.ts";
import * as skopeo from "../helpers/skopeo.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";
import { cliSandbox, type CliSandbox } from "./builder-cli.ts";

const ACCEPT = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json";
const USER = "mirror-bot";
const PASSWORD = "s3cret-upstream-password-7d41";
const TAG_TTL = 3;
/** (row, col) -> the file its allotment holds. */
const cellFile = (r: number, c: number): string => `model/cell-${r}-${c}.bin`;

interface Built {
  allotments: Map<string, string>; // "r,c" -> digest
  baseLayers: string[];
  baseFiles: string[];
}

describe.each([
  { kind: "anonymous", auth: false },
  { kind: "htpasswd", auth: true },
])("a mirrored upstream ($kind)", ({ auth }) => {
  let work: string;
  let peer: PeerRegistry;
  let proxy: RecordingProxy;
  let registry: Registry;
  let cli: CliSandbox;
  let containerd: Containerd;
  let built: Built;
  let base: WrittenImage;
  const creds = auth ? `${USER}:${PASSWORD}` : undefined;
  const bodies: string[] = [];

  const ours = (repo: string, tag: string): string => `${registry.host}/lab/${repo}:${tag}`;
  const fullGets = (from: number): string[] =>
    proxy.seen
      .slice(from)
      .filter((r) => r.method === "GET" && r.url.includes("/blobs/") && r.range === undefined && r.outcome === 200)
      .map(digestOf);
  const rangedGets = (from: number): string[] =>
    proxy.seen
      .slice(from)
      .filter((r) => r.method === "GET" && r.range !== undefined)
      .map(digestOf);
  const cells = (...rc: [number, number][]): string[] => rc.map(([r, c]) => built.allotments.get(`${r},${c}`)!);
  const pull = async (ref: string): Promise<string[]> => {
    await containerd.removeImage(ref).catch(() => undefined);
    const r = await containerd.pull(ref);
    expect(r.code, r.stderr).toBe(0);
    return containerd.files(ref);
  };
  const get = async (path: string, init?: RequestInit): Promise<Response> => {
    const res = await fetch(`${registry.url}${path}`, { ...init, headers: { Accept: ACCEPT, ...init?.headers } });
    bodies.push(JSON.stringify([...res.headers]));
    return res;
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "2dfs-e2e-upstream-"));
    let htpasswd: string | undefined;
    if (auth) {
      htpasswd = join(work, "htpasswd");
      const { stdout } = await run("htpasswd", ["-Bbn", USER, PASSWORD]);
      await writeFile(htpasswd, stdout);
    }
    peer = await startPeerRegistry(htpasswd ? { htpasswd } : {});
    proxy = await startRecordingProxy(peer.url);
    // An ordinary base image, and on it a 3 x 3 2DFS image, both in the upstream.
    base = await writeImage(join(work, "base"), anImage().randomLayers(2, 64 * 1024), "v1");
    await skopeo.copy(base.ref, `docker://${peer.host}/team/base:v1`, creds ? { creds } : {});
    cli = await cliSandbox();
    const model = join(cli.dir, "model");
    await mkdir(join(model, "model"), { recursive: true });
    const allotments = [];
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 3; c++) {
        await writeFile(join(model, cellFile(r, c)), randomBytes(32 * 1024));
        allotments.push({ src: cellFile(r, c), dst: `/${cellFile(r, c)}`, row: r, col: c });
      }
    }
    await writeFile(join(model, "2dfs.json"), JSON.stringify({ allotments, partitions: { edge: "1.0.2.1" } }));
    const login = creds ? ["--username", USER, "--password-stdin"] : [];
    const out = await cli.json<{ build: { allotments: { row: number; col: number; digest: string }[] } }>(
      ["build", `${peer.host}/team/base:v1`, `${peer.host}/team/model:v1`, "--push", ...login],
      { cwd: model, ...(creds ? { input: PASSWORD } : {}) },
    );
    built = {
      allotments: new Map(out.build.allotments.map((a) => [`${a.row},${a.col}`, a.digest])),
      baseLayers: base.platforms[0]!.layers.map((l) => l.digest),
      baseFiles: base.platforms[0]!.files,
    };
    registry = await startRegistry({
      vars: {
        UPSTREAMS: JSON.stringify({ "lab/": { url: proxy.url, ...(auth ? { credentials: "LAB_CREDS" } : {}) } }),
        UPSTREAM_TAG_TTL_SECONDS: String(TAG_TTL),
      },
      // A secret, as `wrangler secret put` keeps it in a deploy: never on a command line.
      ...(auth ? { secrets: { LAB_CREDS: `${USER}:${PASSWORD}` } } : {}),
    });
    containerd = await startContainerd();
  }, 240_000);

  afterAll(async () => {
    await containerd?.stop();
    await registry?.stop();
    await proxy?.stop();
    await peer?.stop();
    await cli?.cleanup();
    await rm(work, { recursive: true, force: true });
  });

  it("partitions the mirrored image: containerd gets the exact files, and only the base layers and selected allotments are fetched, each once", async () => {
    const from = proxy.seen.length;
    const files = await pull(ours("team/model", "v1--edge"));
    const edge: [number, number][] = [
      [1, 0],
      [1, 1],
      [2, 0],
      [2, 1],
    ];
    expect(files).toEqual([...built.baseFiles, ...edge.map(([r, c]) => cellFile(r, c))].sort());
    const fetched = fullGets(from);
    const allotments = new Set(built.allotments.values());
    expect(fetched.filter((d) => allotments.has(d)).sort()).toEqual(cells(...edge).sort());
    for (const d of built.baseLayers) expect(fetched).toContain(d);
    expect(new Set(fetched).size).toBe(fetched.length); // each once
    // Sizes and compression from the first bytes of the selected allotments only.
    expect(rangedGets(from).every((d) => cells(...edge).includes(d))).toBe(true);

    const rectangle = proxy.seen.length;
    expect(await pull(ours("team/model", "v1--0.0.0.2"))).toEqual(
      [...built.baseFiles, cellFile(0, 0), cellFile(0, 1), cellFile(0, 2)].sort(),
    );
    expect(fullGets(rectangle).sort()).toEqual(cells([0, 0], [0, 1], [0, 2]).sort());
  });

  it("a second device pulling the same partition fetches nothing from the upstream", async () => {
    const from = proxy.seen.length;
    await pull(ours("team/model", "v1--edge"));
    expect(fullGets(from)).toEqual([]);
    expect(rangedGets(from)).toEqual([]);
  });

  it("passes an ordinary image through byte for byte, digests kept", async () => {
    const direct = await skopeo.inspectRaw(`docker://${peer.host}/team/base:v1`, creds ? { creds } : {});
    const through = await skopeo.inspectRaw(`docker://${ours("team/base", "v1")}`);
    expect(through).toEqual(direct);
    const dest = join(work, "through");
    await skopeo.copy(`docker://${ours("team/base", "v1")}`, `oci:${dest}:v1`, { preserveDigests: true });
    for (const layer of built.baseLayers) {
      const bytes = await readFile(join(dest, "blobs", "sha256", layer.slice(7)));
      expect(`sha256:${createHash("sha256").update(bytes).digest("hex")}`).toBe(layer);
    }
  });

  it("refuses a push to the mirrored prefix, saying why", async () => {
    const r = await skopeo.copy(base.ref, `docker://${ours("team/pushed", "v1")}`).catch((e: Error) => e);
    expect(r).toBeInstanceOf(Error);
    expect((r as Error).message).toMatch(/read-only mirror of team\/pushed/);
    const res = await get("/v2/lab/team/model/manifests/v1", { method: "DELETE" });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe("DENIED");
  });

  it("sees a tag re-pointed upstream after UPSTREAM_TAG_TTL_SECONDS, not before", async () => {
    const digest = async (): Promise<string | null> =>
      (await get("/v2/lab/team/moving/manifests/v1", { method: "HEAD" })).headers.get("docker-content-digest");
    const a = await writeImage(join(work, "a"), anImage().randomLayers(1, 1024), "v1");
    const b = await writeImage(join(work, "b"), anImage().randomLayers(1, 1024), "v1");
    await skopeo.copy(a.ref, `docker://${peer.host}/team/moving:v1`, {
      ...(creds ? { creds } : {}),
      preserveDigests: true,
    });
    expect(await digest()).toBe(a.digest);
    await skopeo.copy(b.ref, `docker://${peer.host}/team/moving:v1`, {
      ...(creds ? { creds } : {}),
      preserveDigests: true,
    });
    expect(await digest()).toBe(a.digest);
    await new Promise((r) => setTimeout(r, (TAG_TTL + 0.5) * 1000));
    expect(await digest()).toBe(b.digest);
  });

  it("stores nothing when the upstream serves a blob whose bytes do not match its digest, and the pull fails", async () => {
    const target = cells([2, 2])[0]!;
    proxy.setFaults((req) =>
      req.method === "GET" && req.url?.endsWith(`/blobs/${target}`) && !req.headers.range ? "corrupt" : undefined,
    );
    try {
      await containerd.removeImage(ours("team/model", "v1--2.2.2.2")).catch(() => undefined);
      const r = await containerd.pull(ours("team/model", "v1--2.2.2.2")).catch((e: Error) => e);
      expect(r instanceof Error || r.code !== 0).toBe(true);
    } finally {
      proxy.setFaults(undefined);
    }
    // Nothing was kept: the next GET goes to the upstream again, and gets the right bytes.
    const from = proxy.seen.length;
    const res = await get(`/v2/lab/team/model/blobs/${target}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(`sha256:${createHash("sha256").update(bytes).digest("hex")}`).toBe(target);
    expect(fullGets(from)).toEqual([target]);
  });

  it("takes concurrent first GETs of one blob: every client gets its bytes, and later GETs come from the store", async () => {
    const target = cells([1, 2])[0]!; // pulled by no test before this one
    const from = proxy.seen.length;
    const reads = await Promise.all(
      [1, 2, 3, 4].map(async () => Buffer.from(await (await get(`/v2/lab/team/model/blobs/${target}`)).arrayBuffer())),
    );
    for (const bytes of reads) expect(`sha256:${createHash("sha256").update(bytes).digest("hex")}`).toBe(target);
    expect(fullGets(from).length).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 500)); // the copies are committed after the responses
    const later = proxy.seen.length;
    await get(`/v2/lab/team/model/blobs/${target}`).then((r) => r.arrayBuffer());
    expect(fullGets(later)).toEqual([]);
  });

  it("with the upstream stopped, still pulls a tag it knows (saying it may be stale) and answers an unknown one 503 at once", async () => {
    await peer.stop();
    await new Promise((r) => setTimeout(r, (TAG_TTL + 0.5) * 1000));
    const files = await pull(ours("team/model", "v1--edge"));
    expect(files.length).toBe(built.baseFiles.length + 4);
    const head = await get("/v2/lab/team/model/manifests/v1", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("warning")).toMatch(/110 - "upstream .* is unavailable: this answer may be stale"/);
    const started = Date.now();
    const unknown = await get("/v2/lab/team/never-asked/manifests/v1");
    expect(unknown.status).toBe(503);
    expect(((await unknown.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe("UNAVAILABLE");
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("lets the upstream credentials into no response and no log line", async () => {
    expect(registry.log()).not.toContain(PASSWORD);
    for (const b of bodies) expect(b).not.toContain(PASSWORD);
    if (auth) expect(registry.log()).not.toContain(Buffer.from(`${USER}:${PASSWORD}`).toString("base64"));
  });
});

function digestOf(r: SeenRequest): string {
  return r.url.split("/blobs/")[1]!.split("?")[0]!;
}
