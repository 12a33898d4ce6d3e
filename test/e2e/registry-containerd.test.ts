/**
 * containerd, the edge device, pulls from the registry under `wrangler dev` with the stock `ctr`
 * client: each platform of a 2-platform index unpacks to exactly the files that were pushed, and
 * the content store holds exactly the index and that platform's manifest, config and layers.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { anImage } from "../helpers/images/builder.ts";
import { writeImage, type WrittenImage } from "../helpers/images/layout.ts";
import { formatPlatform } from "../helpers/images/platform.ts";
import { startContainerd, type Containerd } from "../helpers/containerd.ts";
import * as skopeo from "../helpers/skopeo.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";

describe("containerd pulls from wrangler dev", () => {
  let registry: Registry;
  let containerd: Containerd;
  let work: string;
  let image: WrittenImage;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "2dfs-e2e-ctr-"));
    [registry, containerd, image] = await Promise.all([
      startRegistry(),
      startContainerd(),
      writeImage(
        join(work, "src"),
        anImage()
          .platforms(["linux/amd64", "linux/arm64"])
          .randomLayers(2, 500_000)
          .layer([{ path: "etc/motd", content: "shared by both platforms\n" }]),
        "v1",
      ),
    ]);
    await skopeo.copy(image.ref, `docker://${registry.host}/e2e/edge:v1`, { all: true, preserveDigests: true });
  });

  afterAll(async () => {
    await containerd?.stop();
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  for (const platform of ["linux/arm64", "linux/amd64"]) {
    it(`unpacks exactly the ${platform} files and fetches only that platform's blobs`, async () => {
      const ref = `${registry.host}/e2e/edge:v1`;
      const expected = image.platforms.find((p) => formatPlatform(p.platform) === platform)!;
      await containerd.pull(ref, { platform });
      expect(await containerd.files(ref, platform)).toEqual(expected.files);
      expect(expected.files).toContain("etc/motd");

      const fetched = await containerd.contentDigests();
      const wanted = [
        image.digest,
        expected.manifest.digest,
        expected.config.digest,
        ...expected.layers.map((l) => l.descriptor.digest),
      ];
      expect(fetched).toEqual([...new Set(wanted)].sort());
      await containerd.removeImage(ref);
    });
  }
});
