/**
 * 2DFS partitions pulled by stock clients from the registry as a user runs it (`wrangler dev`).
 *
 * A real 2DFS image goes in: two platforms, two base layers each, a 3x3 field with a hole at
 * (1,1) whose allotments are real tars (gzip'd, one plain, one zstd'd), and a named partition.
 * Then containerd, the edge device, pulls semantic tags for each platform from an empty content
 * store: the unpacked snapshot must hold the base files plus the selected allotments' files, and
 * the registry must have served exactly the config, the base layers and the selected allotments,
 * each once. skopeo then copies the same partitions to OCI layouts, byte for byte.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Digest } from "../../core/oci/digest.ts";
import type { ImageIndex, ImageManifest } from "../../core/oci/manifest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { anImage } from "../helpers/images/builder.ts";
import { layoutTop, OciLayout, writeImage, type WrittenImage } from "../helpers/images/layout.ts";
import { formatPlatform } from "../helpers/images/platform.ts";
import { overHttp, push } from "../helpers/images/push.ts";
import { allotmentsAt, expectedFiles, platformOf, type Cell } from "../helpers/images/selection.ts";
import { startContainerd } from "../helpers/containerd.ts";
import { blobGets, logMark, requestsSince } from "../helpers/request-log.ts";
import * as skopeo from "../helpers/skopeo.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";

const REPO = "e2e/model";
const TAG = "v1";
const PLATFORMS = ["linux/amd64", "linux/arm64"];
const ACCEPT = [MediaType.OciIndex, MediaType.OciManifest].join(", ");

/** Each semantic tag with the cells it must select; (1,1) is the hole. */
// prettier-ignore
const PARTITIONS: { label: string; cells: Cell[] }[] = [
  { label: "0.0.0.0", cells: [[0, 0]] },
  { label: "0.0.1.1", cells: [[0, 0], [0, 1], [1, 0]] },
  { label: "0.0.0.2--2.0.2.2", cells: [[0, 0], [0, 1], [0, 2], [2, 0], [2, 1], [2, 2]] },
  // The named partition "edge" is 1.0.2.1: rows 1-2, columns 0-1, around the hole.
  { label: "edge", cells: [[1, 0], [2, 0], [2, 1]] },
  // The whole field, flattened into a runnable image.
  { label: "all", cells: [[0, 0], [0, 1], [0, 2], [1, 0], [1, 2], [2, 0], [2, 1], [2, 2]] },
];

const sorted = <T>(xs: Iterable<T>): T[] => [...xs].sort();

/** What the registry answers for `tag` and `platform`: the top digest, the platform's manifest and config. */
interface Served {
  top: Digest;
  manifest: Digest;
  config: Digest;
}

describe("2DFS partitions pulled by containerd and skopeo through wrangler dev", () => {
  let registry: Registry;
  let work: string;
  let img: WrittenImage;
  /** What containerd fetched, per `label platform`: compared with skopeo at the end. */
  const fetchedByContainerd = new Map<string, Digest[]>();

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "2dfs-e2e-partition-"));
    [registry, img] = await Promise.all([
      startRegistry(),
      writeImage(
        join(work, "src"),
        anImage()
          .name(REPO)
          .platforms(PLATFORMS)
          .randomLayers(2, 32 * 1024)
          .manifestAnnotations((_, slug) => ({ "org.example.platform": slug }))
          .grid(3, 3)
          .hole(1, 1)
          .allotment(0, 1, { compression: "none" })
          .allotment(2, 0, { compression: "zstd" })
          .allotmentBytes(64 * 1024)
          .partition("edge", "1.0.2.1"),
      ),
    ]);
    await push(overHttp(registry.url), REPO, img, TAG);
  });

  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function getManifest(ref: string): Promise<{ digest: Digest; json: ImageIndex & ImageManifest }> {
    const res = await fetch(`${registry.url}/v2/${REPO}/manifests/${ref}`, { headers: { Accept: ACCEPT } });
    const body = await res.text();
    expect(res.status, body).toBe(200);
    return { digest: res.headers.get("docker-content-digest") as Digest, json: JSON.parse(body) };
  }

  async function served(label: string, platform: string): Promise<Served> {
    const top = await getManifest(`${TAG}--${label}`);
    const entry = top.json.manifests.find((m) => m.platform && formatPlatform(m.platform) === platform);
    if (!entry) throw new Error(`${TAG}--${label} has no ${platform} entry`);
    const child = await getManifest(entry.digest);
    return { top: top.digest, manifest: child.digest, config: child.json.config.digest };
  }

  describe("containerd, the edge device", () => {
    const cases = PARTITIONS.flatMap((p) => PLATFORMS.map((platform) => ({ ...p, platform })));

    it.each(cases)(
      "pulls $label for $platform: base files plus the selected allotments, fetched once each",
      async ({ label, cells, platform }) => {
        const p = platformOf(img, platform);
        const ref = `${registry.host}/${REPO}:${TAG}--${label}`;
        const containerd = await startContainerd();
        try {
          expect(await containerd.contentDigests()).toEqual([]);
          const mark = logMark(registry);
          await containerd.pull(ref, { platform });
          const fetched = blobGets(await requestsSince(registry, mark), REPO);

          const files = await containerd.files(ref, platform);
          expect(files).toEqual(expectedFiles(p, cells));
          const splits = cells.map(([r, c]) => `model/part-${r}-${c}.bin`);
          expect(files.filter((f) => f.startsWith("model/part-"))).toEqual(sorted(splits));

          const layers = [
            ...p.layers.map((l) => l.descriptor.digest),
            ...allotmentsAt(p, cells).map((a) => a.layer.descriptor.digest),
          ];
          const answer = await served(label, platform);
          // The registry served the config, the base layers and the selected allotments: nothing else, nothing twice.
          expect(fetched.length, fetched.join("\n")).toBe(new Set(fetched).size);
          expect(sorted(fetched)).toEqual(sorted([answer.config, ...layers]));
          // And that is exactly what containerd holds, with the partition's index and this platform's manifest.
          const content = await containerd.contentDigests();
          expect(content).toEqual(sorted([answer.top, answer.manifest, answer.config, ...layers]));
          fetchedByContainerd.set(`${label} ${platform}`, content);
        } finally {
          await containerd.stop();
        }
      },
    );
  });

  describe("skopeo", () => {
    it.each(PARTITIONS)(
      "copies $label to an OCI layout byte for byte, with the digests the registry advertises",
      async ({ label, cells }) => {
        const out = join(work, `skopeo-${label}`);
        await skopeo.copy(`docker://${registry.host}/${REPO}:${TAG}--${label}`, `oci:${out}:p`, {
          all: true,
          preserveDigests: true,
        });
        const head = await fetch(`${registry.url}/v2/${REPO}/manifests/${TAG}--${label}`, {
          method: "HEAD",
          headers: { Accept: ACCEPT },
        });
        expect(head.status).toBe(200);
        const top = await layoutTop(out, "p");
        expect(top.digest).toBe(head.headers.get("docker-content-digest"));

        const copied = new OciLayout(out);
        const index = JSON.parse((await copied.readBlob(top.digest)).toString()) as ImageIndex;
        expect(index.annotations?.["2dfs.partition.edge"]).toBe("1.0.2.1");
        expect(index.manifests.map((m) => m.platform)).toEqual(img.platforms.map((p) => p.platform));

        const expectedBlobs: Digest[] = [top.digest];
        for (const [i, entry] of index.manifests.entries()) {
          const p = img.platforms[i]!;
          const selected = allotmentsAt(p, cells);
          const manifest = JSON.parse((await copied.readBlob(entry.digest)).toString()) as ImageManifest;
          // Base layers as pushed, then the selected allotments row-major, each with the media type of its bytes.
          expect(manifest.layers).toEqual([
            ...p.layers.map((l) => l.descriptor),
            ...selected.map((a) => a.layer.descriptor),
          ]);
          expect(manifest.annotations).toEqual({ "org.example.platform": p.slug });
          const config = JSON.parse((await copied.readBlob(manifest.config.digest)).toString()) as {
            architecture: string;
            rootfs: { diff_ids: string[] };
          };
          expect(config.architecture).toBe(p.platform.architecture);
          expect(config.rootfs.diff_ids).toEqual([
            ...p.layers.map((l) => l.diffId),
            ...selected.map((a) => a.layer.diffId),
          ]);
          expectedBlobs.push(entry.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest));
        }
        expect(await copied.blobDigests()).toEqual(sorted(new Set(expectedBlobs)));

        // Layers are the pushed bytes; the derived index, manifests and configs are what the registry serves.
        for (const digest of await copied.blobDigests()) {
          const bytes = await copied.readBlob(digest);
          const pushed = await readFile(img.layout.blobPath(digest)).catch(() => null);
          if (pushed) {
            expect(bytes.equals(pushed), digest).toBe(true);
          } else {
            const kind =
              index.manifests.some((m) => m.digest === digest) || digest === top.digest ? "manifests" : "blobs";
            const res = await fetch(`${registry.url}/v2/${REPO}/${kind}/${digest}`, { headers: { Accept: ACCEPT } });
            expect(Buffer.from(await res.arrayBuffer()).equals(bytes), digest).toBe(true);
          }
        }
      },
    );

    it("holds, per platform, exactly the objects containerd fetched for the same partition", async () => {
      for (const { label } of PARTITIONS) {
        const copied = new OciLayout(join(work, `skopeo-${label}`));
        const top = await layoutTop(copied.dir, "p");
        const index = JSON.parse((await copied.readBlob(top.digest)).toString()) as ImageIndex;
        for (const platform of PLATFORMS) {
          const entry = index.manifests.find((m) => m.platform && formatPlatform(m.platform) === platform)!;
          const manifest = JSON.parse((await copied.readBlob(entry.digest)).toString()) as ImageManifest;
          const skopeoObjects = [
            top.digest,
            entry.digest,
            manifest.config.digest,
            ...manifest.layers.map((l) => l.digest),
          ];
          expect(fetchedByContainerd.get(`${label} ${platform}`), `${label} ${platform}`).toEqual(
            sorted(skopeoObjects),
          );
        }
      }
    });
  });
});
