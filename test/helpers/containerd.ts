/**
 * containerd as the edge device: a private instance (scripts/containerd-sandbox.sh) whose root,
 * state and socket live in a temp dir, driven with `ctr`. Images are unpacked with the native
 * snapshotter, which keeps every layer snapshot as a plain directory holding the whole filesystem
 * up to that layer, so the top snapshot of an image's chain shows exactly which files arrived.
 */
import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import type { Digest } from "../../core/oci/digest.ts";
import type { ImageIndex, ImageManifest } from "../../core/oci/manifest.ts";
import { isIndexMediaType } from "../../core/oci/media-types.ts";
import { parsePlatform } from "./images/platform.ts";
import { REPO_ROOT, run, type RunResult } from "./process.ts";

const SCRIPT = join(REPO_ROOT, "scripts", "containerd-sandbox.sh");
const SNAPSHOTTER = "native";

export interface PullOptions {
  /** os/arch[/variant]; the host's platform when omitted. */
  platform?: string;
  /** `user:password` for registries with auth (`ctr --user`). */
  user?: string;
}

export interface Containerd {
  dir: string;
  socket: string;
  /** Any ctr command against this instance: `ctr(["image", "ls"])`. */
  ctr(args: readonly string[]): Promise<RunResult>;
  /** `ctr image pull --plain-http --snapshotter native [--platform p] REF`, which also unpacks. */
  pull(ref: string, opts?: PullOptions): Promise<RunResult>;
  /** The directory of the unpacked top-most snapshot of `ref` for `platform`. */
  rootfs(ref: string, platform?: string): Promise<string>;
  /** Every regular file and symlink of the unpacked image, relative and sorted. */
  files(ref: string, platform?: string): Promise<string[]>;
  /** Digests of everything in the content store: what was fetched. */
  contentDigests(): Promise<Digest[]>;
  /** Removes an image and lets containerd collect its content and snapshots. */
  removeImage(ref: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startContainerd(): Promise<Containerd> {
  const dir = await mkdtemp(join(tmpdir(), "2dfs-containerd-"));
  const { stdout } = await run(SCRIPT, ["start", dir]);
  const socket = stdout.trim();
  const ctr = (args: readonly string[]): Promise<RunResult> => run("ctr", ["-a", socket, ...args]);
  const snapshot = (args: readonly string[]): Promise<RunResult> =>
    ctr(["snapshot", "--snapshotter", SNAPSHOTTER, ...args]);
  const content = async (digest: string): Promise<Buffer> =>
    Buffer.from((await ctr(["content", "get", digest])).stdout);
  let views = 0;

  const rootfs = async (ref: string, platform?: string): Promise<string> => {
    const manifest = await platformManifest(ref, platform ?? hostPlatform(), ctr, content);
    const config = JSON.parse((await content(manifest.config.digest)).toString()) as { rootfs: { diff_ids: Digest[] } };
    const top = chainId(config.rootfs.diff_ids);
    // A view of a committed native snapshot is a read-only bind of the snapshot's own directory;
    // `mounts` names that directory without mounting anything.
    // containerd's own garbage collector, set off by a pull, may remove the (lease-less) view
    // between our steps; the snapshot it views stays, so asking again with a new view works.
    for (let attempt = 1; ; attempt++) {
      const key = `e2e-view-${process.pid}-${views++}`;
      try {
        await snapshot(["view", key, top]);
        const { stdout: mount } = await snapshot(["mounts", "/unused", key]);
        const source = /-t bind (\S+) /.exec(mount)?.[1];
        if (!source) throw new Error(`unexpected mount for snapshot ${top}: ${mount}`);
        await snapshot(["rm", key]).catch((e: unknown) => {
          if (!isNotFound(e)) throw e;
        });
        return source;
      } catch (e) {
        if (attempt === 3 || !isNotFound(e)) throw e;
      }
    }
  };

  return {
    dir,
    socket,
    ctr,
    pull: (ref, opts = {}) =>
      ctr([
        "image",
        "pull",
        "--plain-http",
        "--snapshotter",
        SNAPSHOTTER,
        ...(opts.platform ? ["--platform", opts.platform] : []),
        ...(opts.user ? ["--user", opts.user] : []),
        ref,
      ]),
    rootfs,
    files: async (ref, platform) => listFiles(await rootfs(ref, platform)),
    contentDigests: async () => {
      const { stdout } = await ctr(["content", "ls", "--quiet"]);
      return stdout
        .split("\n")
        .filter((l) => l.startsWith("sha256:"))
        .map((l) => l.trim() as Digest)
        .sort();
    },
    removeImage: async (ref) => {
      await ctr(["image", "rm", "--sync", ref]);
    },
    stop: async () => {
      await run(SCRIPT, ["stop", dir]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function isNotFound(e: unknown): boolean {
  return /not found|does not exist/i.test(String(e));
}

/** The image's manifest for `platform`: the index entry that matches, or the manifest itself. */
async function platformManifest(
  ref: string,
  platform: string,
  ctr: (args: readonly string[]) => Promise<RunResult>,
  content: (digest: string) => Promise<Buffer>,
): Promise<ImageManifest> {
  const { stdout } = await ctr(["image", "ls"]);
  const row = stdout.split("\n").find((l) => l.split(/\s+/)[0] === ref);
  const top = row && /\s(sha256:[a-f0-9]{64})\s/.exec(row)?.[1];
  if (!top) throw new Error(`containerd has no image ${ref}:\n${stdout}`);
  const body = JSON.parse((await content(top)).toString()) as ImageManifest | ImageIndex;
  if (!isIndex(body)) return body;
  const want = parsePlatform(platform);
  const entry = body.manifests.find(
    (m) =>
      m.platform?.os === want.os &&
      m.platform.architecture === want.architecture &&
      (want.variant === undefined || m.platform.variant === want.variant),
  );
  if (!entry) throw new Error(`${ref} has no manifest for ${platform}`);
  return JSON.parse((await content(entry.digest)).toString()) as ImageManifest;
}

function isIndex(body: ImageManifest | ImageIndex): body is ImageIndex {
  return "manifests" in body && (body.mediaType === undefined || isIndexMediaType(body.mediaType));
}

/** The OCI chain ID of a layer stack: what containerd names the committed snapshot of its top. */
export function chainId(diffIds: readonly Digest[]): Digest {
  if (diffIds.length === 0) throw new Error("an image without layers has no snapshot");
  return diffIds.slice(1).reduce<Digest>((parent, diffId) => {
    return `sha256:${createHash("sha256").update(`${parent} ${diffId}`).digest("hex")}`;
  }, diffIds[0]!);
}

function hostPlatform(): string {
  return `linux/${process.arch === "x64" ? "amd64" : process.arch}`;
}

export async function listFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() || e.isSymbolicLink())
    .map((e) => relative(root, join(e.parentPath, e.name)))
    .sort();
}
