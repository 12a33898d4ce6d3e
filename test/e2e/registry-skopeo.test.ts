/**
 * skopeo against the registry as a user runs it (`wrangler dev`): a 2-platform OCI index goes in
 * and comes back out with every digest preserved, and every blob and manifest is byte-identical;
 * then inspect, list-tags and delete, and a Docker v2s2 image for the Docker media types.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MediaType } from "../../core/oci/media-types.ts";
import { anImage } from "../helpers/images/builder.ts";
import { layoutTop, OciLayout, writeImage, type WrittenImage } from "../helpers/images/layout.ts";
import { expectOciError, answerOf } from "../helpers/oci.ts";
import * as skopeo from "../helpers/skopeo.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";

const ALL_MANIFESTS = [
  MediaType.OciIndex,
  MediaType.OciManifest,
  MediaType.DockerManifestList,
  MediaType.DockerManifest,
].join(", ");

describe("skopeo round trip through wrangler dev", () => {
  let registry: Registry;
  let work: string;
  let image: WrittenImage;
  let repo: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "2dfs-e2e-skopeo-"));
    [registry, image] = await Promise.all([
      startRegistry(),
      writeImage(
        join(work, "src"),
        anImage()
          .platforms(["linux/amd64", "linux/arm64"])
          .randomLayers(3, 1_500_000)
          .manifestAnnotations({ "org.opencontainers.image.title": "e2e round trip" })
          .indexAnnotations({ "org.opencontainers.image.description": "two platforms, three layers each" }),
        "v1",
      ),
    ]);
    repo = `docker://${registry.host}/e2e/roundtrip`;
  });

  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("copies the index in and back out with --preserve-digests, every blob byte-identical", async () => {
    await skopeo.copy(image.ref, `${repo}:v1`, { all: true, preserveDigests: true });
    const out = join(work, "out");
    await skopeo.copy(`${repo}:v1`, `oci:${out}:v1`, { all: true, preserveDigests: true });

    expect((await layoutTop(out, "v1")).digest).toBe(image.digest);
    const src = new OciLayout(image.dir);
    const back = new OciLayout(out);
    expect(await back.blobDigests()).toEqual(image.digests);
    for (const digest of image.digests) {
      expect((await back.readBlob(digest)).equals(await src.readBlob(digest)), digest).toBe(true);
    }
  });

  it("serves every blob and manifest byte for byte, with its length, even to a client that accepts gzip", async () => {
    const src = new OciLayout(image.dir);
    const manifests = new Set([image.digest, ...image.platforms.map((p) => p.manifest.digest)]);
    for (const digest of image.digests) {
      const kind = manifests.has(digest) ? "manifests" : "blobs";
      const res = await fetch(`${registry.url}/v2/e2e/roundtrip/${kind}/${digest}`, {
        headers: { "Accept-Encoding": "gzip", Accept: ALL_MANIFESTS },
      });
      const expected = await src.readBlob(digest);
      expect(res.status, digest).toBe(200);
      expect(res.headers.get("content-encoding"), digest).toBeNull();
      expect(res.headers.get("content-length"), digest).toBe(String(expected.byteLength));
      expect(res.headers.get("docker-content-digest"), digest).toBe(digest);
      expect(Buffer.from(await res.arrayBuffer()).equals(expected), digest).toBe(true);
    }
  });

  it("inspects the image: --raw is the pushed index, and each platform resolves to its manifest and config", async () => {
    const src = new OciLayout(image.dir);
    const raw = await skopeo.inspectRaw(`${repo}:v1`);
    expect(raw.equals(await src.readBlob(image.digest))).toBe(true);

    const info = await skopeo.inspect(`${repo}:v1`);
    const amd64 = image.platforms.find((p) => p.platform.architecture === "amd64")!;
    expect(info.Name).toBe(`${registry.host}/e2e/roundtrip`);
    expect(info.Digest).toBe(image.digest);
    expect(info.Os).toBe("linux");
    expect(info.Architecture).toBe("amd64");
    expect(info.Layers).toEqual(amd64.layers.map((l) => l.descriptor.digest));

    for (const p of image.platforms) {
      const config = await skopeo.inspectConfig(`${repo}@${p.manifest.digest}`);
      const pushed = JSON.parse((await src.readBlob(p.config.digest)).toString());
      expect(config).toEqual(pushed);
    }
  });

  it("lists tags", async () => {
    await skopeo.copy(`${repo}:v1`, `${repo}:v2`, { all: true, preserveDigests: true });
    await skopeo.copy(`${repo}:v1`, `${repo}:latest`, { all: true, preserveDigests: true });
    expect((await skopeo.listTags(repo)).sort()).toEqual(["latest", "v1", "v2"]);
  });

  it("deletes: the manifest is gone by tag and by digest", async () => {
    await skopeo.deleteImage(`${repo}:v1`);
    for (const ref of ["v1", "v2", "latest", image.digest]) {
      const res = await fetch(`${registry.url}/v2/e2e/roundtrip/manifests/${ref}`, {
        headers: { Accept: ALL_MANIFESTS },
      });
      expectOciError(await answerOf(res), 404, "MANIFEST_UNKNOWN");
    }
    await expect(skopeo.inspectRaw(`${repo}:v1`)).rejects.toThrow(/manifest unknown|not found/i);
  });

  it("stores and serves a Docker v2s2 image", async () => {
    const single = await writeImage(
      join(work, "docker-src"),
      anImage().platforms(["linux/amd64"]).randomLayers(2, 300_000),
      "d1",
    );
    await skopeo.copy(single.ref, `docker://${registry.host}/e2e/docker:v1`, { format: "v2s2" });
    const raw = JSON.parse((await skopeo.inspectRaw(`docker://${registry.host}/e2e/docker:v1`)).toString()) as {
      mediaType: string;
      layers: { digest: string }[];
    };
    expect(raw.mediaType).toBe(MediaType.DockerManifest);
    expect(raw.layers.map((l) => l.digest)).toEqual(single.platforms[0]!.layers.map((l) => l.descriptor.digest));

    const out = join(work, "docker-out");
    await skopeo.copy(`docker://${registry.host}/e2e/docker:v1`, `oci:${out}:d1`);
    const src = new OciLayout(single.dir);
    const back = new OciLayout(out);
    for (const layer of single.platforms[0]!.layers) {
      const d = layer.descriptor.digest;
      expect((await back.readBlob(d)).equals(await src.readBlob(d)), d).toBe(true);
    }
  });
});
