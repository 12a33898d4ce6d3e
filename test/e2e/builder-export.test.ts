/**
 * `2dfs-push export` writes a partition as an ordinary OCI image that stock tools take in:
 *   - from the local store, as a layout directory, which skopeo copies into the distribution
 *     registry (which knows nothing of 2DFS) and containerd pulls from there;
 *   - from our registry (a store that lacks the image), as an OCI archive, which
 *     `ctr image import` unpacks.
 * The unpacked snapshots hold exactly the selected allotments' files, and an export is the very
 * image our registry serves for the same semantic tag.
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExportResult } from "../../builder-cli/src/export/export.ts";
import { listFiles, startContainerd, type Containerd } from "../helpers/containerd.ts";
import { sha256Of } from "../helpers/oci.ts";
import { startPeerRegistry, type PeerRegistry } from "../helpers/peer.ts";
import * as skopeo from "../helpers/skopeo.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";
import { cliSandbox, type BuildPushOutput, type CliSandbox } from "./builder-cli.ts";

const REPO = "e2e/model";
const PLATFORM = "linux/amd64";
/** test/fixtures/builder/2x2: files of cells (0,0) and (0,1), and of the named partition "weights" (1.0.1.1). */
const TOP = {
  "model/config.json": "config.json",
  "model/README.md": "README.md",
  "model/tokenizer.txt": "tokenizer.txt",
};
const WEIGHTS = {
  "model/head.bin": "model/head.bin",
  "model/layers/0.bin": "model/layers/0.bin",
  "model/layers/1.bin": "model/layers/1.bin",
};

describe("2dfs-push export, then skopeo and containerd take the partition in", () => {
  let registry: Registry;
  let peer: PeerRegistry;
  let containerd: Containerd;
  let sandbox: CliSandbox;
  let src: string;
  let ref: string;
  /** The CLI's environment with an empty image store: REF can only come from the registry. */
  let remoteOnly: Record<string, string>;

  beforeAll(async () => {
    sandbox = await cliSandbox();
    [registry, peer, containerd, src] = await Promise.all([
      startRegistry(),
      startPeerRegistry(),
      startContainerd(),
      sandbox.fixture("2x2"),
    ]);
    ref = `${registry.host}/${REPO}:v1`;
    await sandbox.json<BuildPushOutput>(["build", "scratch", ref, "--push"], { cwd: src });
    remoteOnly = { XDG_DATA_HOME: join(sandbox.dir, "empty-store") };
    await mkdir(remoteOnly.XDG_DATA_HOME!);
  });

  afterAll(async () => {
    await Promise.all([registry?.stop(), peer?.stop(), containerd?.stop(), sandbox?.cleanup()]);
  });

  async function unpackedFiles(image: string): Promise<{ root: string; files: string[] }> {
    const root = await containerd.rootfs(image, PLATFORM);
    return { root, files: await listFiles(root) };
  }

  async function expectFiles(image: string, want: Record<string, string>): Promise<void> {
    const { root, files } = await unpackedFiles(image);
    expect(files).toEqual(Object.keys(want).sort());
    for (const [path, source] of Object.entries(want)) {
      expect(await readFile(join(root, path)), path).toEqual(await readFile(join(src, source)));
    }
  }

  it("exports v1--0.0.0.1 from the local store; skopeo copies it to distribution, containerd pulls it", async () => {
    const dir = join(sandbox.dir, "top");
    const local = await sandbox.json<ExportResult>(["export", `${ref}--0.0.0.1`, dir]);
    expect(local).toMatchObject({ format: "oci-layout", tag: `${ref}--0.0.0.1` });
    expect(local.platforms[0]!.allotments.map((a) => [a.row, a.col])).toEqual([
      [0, 0],
      [0, 1],
    ]);

    // The same partition from the registry's copy (empty local store) is the same image, and it
    // is what our registry itself answers for the semantic tag.
    const remote = await sandbox.json<ExportResult>(["export", `${ref}--0.0.0.1`, join(sandbox.dir, "top-remote")], {
      env: remoteOnly,
    });
    expect(remote.digest).toBe(local.digest);
    const served = await skopeo.inspectRaw(`docker://${ref}--0.0.0.1`);
    expect(served).toEqual(await readFile(join(dir, "blobs", "sha256", local.digest.slice(7))));

    const dest = `${peer.host}/e2e/exported:top`;
    await skopeo.copy(`oci:${dir}:${ref}--0.0.0.1`, `docker://${dest}`, { all: true, preserveDigests: true });
    expect(sha256Of(await skopeo.inspectRaw(`docker://${dest}`))).toBe(local.digest);
    await containerd.pull(dest, { platform: PLATFORM });
    await expectFiles(dest, TOP);
  });

  it("exports v1--weights from the registry as an OCI archive that ctr image import unpacks", async () => {
    const tar = join(sandbox.dir, "weights.tar");
    const exported = await sandbox.json<ExportResult>(["export", `${ref}--weights`, tar], { env: remoteOnly });
    // Named by the whole reference with its label, as `podman load` and `ctr image import` show it.
    expect(exported).toMatchObject({ format: "oci-archive", tag: `${ref}--weights` });
    expect(exported.platforms[0]!.allotments.map((a) => [a.row, a.col])).toEqual([
      [1, 0],
      [1, 1],
    ]);

    await containerd.ctr(["image", "import", "--platform", PLATFORM, "--snapshotter", "native", tar]);
    const { stdout } = await containerd.ctr(["image", "ls"]);
    expect(stdout).toContain(exported.digest);
    expect(stdout).toContain(`${ref}--weights`);
    await expectFiles(`${ref}--weights`, WEIGHTS);
  });
});
