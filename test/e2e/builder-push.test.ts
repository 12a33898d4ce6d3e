/**
 * `2dfs-push` pushing what it built, to our registry (`wrangler dev`) and to the distribution
 * registry (Debian `docker-registry`, behind a proxy that writes down every request): a 2x2
 * model from scratch and the same model on top of an ordinary base image given as `oci:DIR`.
 * Both registries serve the index byte for byte and hold every blob, allotments included, and
 * `inspect` of the pushed image sizes each allotment from the registry. The
 * second push of the unchanged image uploads nothing: the CLI says so in its --json report, and
 * the registries saw no upload request at all.
 */
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InspectResult } from "../../builder-cli/src/inspect/inspect.ts";
import { anImage } from "../helpers/images/builder.ts";
import { writeImage, type WrittenImage } from "../helpers/images/layout.ts";
import { startPeerRegistry, type PeerRegistry } from "../helpers/peer.ts";
import { startRecordingProxy, type RecordingProxy } from "../helpers/recording-proxy.ts";
import { logMark, requestsSince } from "../helpers/request-log.ts";
import * as skopeo from "../helpers/skopeo.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";
import {
  cliSandbox,
  headBlob,
  imageBlobDigests,
  type BuildPushOutput,
  type CliSandbox,
  type PushReport,
} from "./builder-cli.ts";

/** Where a push goes, and what the registry was asked since a mark. */
interface Target {
  name: string;
  url: string;
  host: string;
  /** Where the record ends, once earlier requests are all in it. */
  mark(): Promise<number>;
  /** Method and path (query dropped) of every request after `mark`. */
  requestsSince(mark: number): Promise<{ method: string; path: string }[]>;
}

const isUpload = (r: { method: string; path: string }): boolean => r.path.includes("/blobs/uploads/");

describe("2dfs-push build --push and push to wrangler dev and to distribution", () => {
  let registry: Registry;
  let peer: PeerRegistry;
  let proxy: RecordingProxy;
  let sandbox: CliSandbox;
  let spec: string;
  let base: WrittenImage;
  /** An image store with nothing in it: the CLI then reads the image from the registry. */
  let emptyStore: string;
  const targets: Record<"worker" | "distribution", Target> = {} as never;

  beforeAll(async () => {
    sandbox = await cliSandbox();
    [registry, peer, spec, base] = await Promise.all([
      startRegistry(),
      startPeerRegistry(),
      sandbox.fixture("2x2").then((dir) => join(dir, "2dfs.json")),
      writeImage(join(sandbox.dir, "base"), anImage().randomLayers(2, 200_000), "base"),
    ]);
    proxy = await startRecordingProxy(peer.url);
    emptyStore = join(sandbox.dir, "empty-store");
    await mkdir(emptyStore);
    targets.worker = {
      name: "wrangler dev",
      url: registry.url,
      host: registry.host,
      // wrangler logs a request just after answering it: let the log settle before marking it.
      mark: async () => {
        await requestsSince(registry, 0);
        return logMark(registry);
      },
      requestsSince: (mark) => requestsSince(registry, mark),
    };
    targets.distribution = {
      name: "distribution",
      url: proxy.url,
      host: proxy.host,
      mark: async () => proxy.seen.length,
      requestsSince: async (mark) =>
        proxy.seen.slice(mark).map((r) => ({ method: r.method, path: r.url.split("?")[0]! })),
    };
  });

  afterAll(async () => {
    await Promise.all([registry?.stop(), proxy?.stop().then(() => peer?.stop()), sandbox?.cleanup()]);
  });

  const cases = [
    { target: "worker", on: "scratch" },
    { target: "worker", on: "an oci: base" },
    { target: "distribution", on: "scratch" },
    { target: "distribution", on: "an oci: base" },
  ] as const;

  it.each(cases)("pushes a 2x2 image on $on to $target, then again uploading nothing", async ({ target, on }) => {
    const t = targets[target];
    const fromScratch = on === "scratch";
    const repo = fromScratch ? "e2e/scratch-model" : "e2e/based-model";
    const ref = `${t.host}/${repo}:v1`;

    const first = await sandbox.json<BuildPushOutput>([
      "build",
      "-f",
      spec,
      fromScratch ? "scratch" : base.ref,
      ref,
      "--push",
    ]);
    const { build, push } = first;
    expect(build.allotments.map((a) => [a.row, a.col])).toEqual([
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
    ]);
    expect(push.digest).toBe(build.digest);
    expect(push.blobsUploaded + push.blobsMounted).toBe(push.blobsTotal);
    expect(push.bytesUploaded).toBeGreaterThan(0);
    // The same allotments went to e2e/scratch-model of this registry in the case before: the CLI
    // remembers that and mounts them instead of uploading them again.
    if (!fromScratch) expect(push.blobsMounted).toBeGreaterThanOrEqual(build.allotments.length);

    // The registry serves the index exactly as it was built.
    const index = await readFile(join(build.layout, "blobs", "sha256", build.digest.slice(7)));
    expect(await skopeo.inspectRaw(`docker://${ref}`)).toEqual(index);

    // Every blob is there with its size: configs, base layers, the field, and each allotment,
    // which no manifest names (only the field does).
    const named = await imageBlobDigests(build.layout, build.digest);
    expect(named).toContain(build.field.digest);
    const allotments = build.allotments.map((a) => a.digest);
    const all = [...new Set([...named, ...allotments])];
    expect(push.blobsTotal).toBe(all.length);
    for (const digest of all) {
      const head = await headBlob(t.url, repo, digest);
      const local = await readFile(join(build.layout, "blobs", "sha256", digest.slice(7)));
      expect({ digest, ...head }).toEqual({ digest, status: 200, size: local.byteLength });
    }
    if (!fromScratch) {
      for (const layer of base.platforms[0]!.layers) expect(named).toContain(layer.descriptor.digest);
    }

    // `inspect` of the pushed image (not in the store it runs with) sizes each allotment with a HEAD.
    const remote = await sandbox.json<InspectResult>(["inspect", ref], { env: { XDG_DATA_HOME: emptyStore } });
    expect(remote.digest).toBe(build.digest);
    expect(remote.cells.map((c) => [c.row, c.col, c.digest, c.size])).toEqual(
      build.allotments.map((a) => [a.row, a.col, a.digest, a.size]),
    );

    // The same image again: every blob is skipped, and not one upload request reaches the registry.
    const mark = await t.mark();
    const again = await sandbox.json<PushReport>(["push", ref]);
    expect(again).toMatchObject({
      digest: build.digest,
      blobsTotal: all.length,
      blobsSkipped: all.length,
      blobsUploaded: 0,
      blobsMounted: 0,
      bytesUploaded: 0,
    });
    const requests = await t.requestsSince(mark);
    expect(requests.filter(isUpload)).toEqual([]);
    expect(requests.filter((r) => r.method === "HEAD" && r.path.includes("/blobs/")).length).toBe(all.length);
    expect(requests.filter((r) => r.method === "PATCH" || (r.method === "PUT" && r.path.includes("/blobs/")))).toEqual(
      [],
    );
  });
});
