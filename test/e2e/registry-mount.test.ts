/**
 * Copying an image from one repository to another in the same registry must mount every layer
 * (a link to the stored blob), not upload it again. Checked from both ends: skopeo's debug log
 * (which blobs it mounted, which it uploaded) and wrangler's request log (what the registry
 * answered), then the copy is pulled back out and byte-compared.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Digest } from "../../core/oci/digest.ts";
import { anImage } from "../helpers/images/builder.ts";
import { layoutTop, OciLayout, writeImage, type WrittenImage } from "../helpers/images/layout.ts";
import { pushBlob, sha256Of } from "../helpers/oci.ts";
import * as skopeo from "../helpers/skopeo.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";

/** What a `skopeo --debug copy` did with each blob, from its log. */
function blobTraffic(debugLog: string): {
  mounted: Set<Digest>;
  mountsOk: number;
  uploaded: Set<Digest>;
  patches: number;
} {
  const digestIn = (line: string, param: string): Digest | undefined => {
    const hex = new RegExp(`[?&]${param}=sha256(?:%3A|:)([a-f0-9]{64})`).exec(line)?.[1];
    return hex ? `sha256:${hex}` : undefined;
  };
  const mounted = new Set<Digest>();
  const uploaded = new Set<Digest>();
  let mountsOk = 0;
  let patches = 0;
  for (const line of debugLog.split("\n")) {
    if (line.includes("Trying to mount")) {
      const d = digestIn(line, "mount");
      if (d) mounted.add(d);
    } else if (line.includes("... mount OK")) mountsOk++;
    else if (/msg="PATCH http/.test(line)) patches++;
    else if (/msg="PUT http\S+\/blobs\/uploads\//.test(line)) {
      const d = digestIn(line, "digest");
      if (d) uploaded.add(d);
    }
  }
  return { mounted, mountsOk, uploaded, patches };
}

describe("cross-repository copy mounts instead of re-uploading", () => {
  let registry: Registry;
  let work: string;
  let image: WrittenImage;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "2dfs-e2e-mount-"));
    [registry, image] = await Promise.all([
      startRegistry(),
      writeImage(
        join(work, "src"),
        anImage().platforms(["linux/amd64", "linux/arm64"]).randomLayers(3, 1_000_000),
        "v1",
      ),
    ]);
    await skopeo.copy(image.ref, `docker://${registry.host}/e2e/source:v1`, { all: true, preserveDigests: true });
  });

  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("mounts every layer into the new repository and uploads none of them", async () => {
    const logBefore = registry.log().length;
    const { stderr } = await skopeo.copy(
      `docker://${registry.host}/e2e/source:v1`,
      `docker://${registry.host}/e2e/mirror:v1`,
      { all: true, preserveDigests: true, debug: true },
    );
    const layers = new Set(image.platforms.flatMap((p) => p.layers.map((l) => l.descriptor.digest)));
    const configs = new Set(image.platforms.map((p) => p.config.digest));
    const traffic = blobTraffic(stderr);

    // skopeo's side: each layer was mounted, and every mount succeeded.
    expect([...traffic.mounted].sort()).toEqual([...layers].sort());
    expect(traffic.mountsOk).toBe(layers.size);
    // Only configs may travel (skopeo re-writes the small config blob itself rather than mounting it).
    for (const d of traffic.uploaded) expect(configs, `${d} was uploaded`).toContain(d);
    expect(traffic.patches).toBeLessThanOrEqual(configs.size);

    // The registry's side: one 201 to a mount POST per layer, and no chunk beyond the configs.
    const requests = registry.log().slice(logBefore);
    const mountAnswers = requests.match(/POST \/v2\/e2e\/mirror\/blobs\/uploads\/ 201/g) ?? [];
    expect(mountAnswers.length).toBe(layers.size);
    const patches = requests.match(/PATCH \/v2\/e2e\/mirror\/blobs\/uploads\/\S+ 202/g) ?? [];
    expect(patches.length).toBeLessThanOrEqual(configs.size);
  });

  it("serves the mounted copy byte for byte", async () => {
    const out = join(work, "out");
    await skopeo.copy(`docker://${registry.host}/e2e/mirror:v1`, `oci:${out}:v1`, { all: true, preserveDigests: true });
    expect((await layoutTop(out, "v1")).digest).toBe(image.digest);
    const src = new OciLayout(image.dir);
    const back = new OciLayout(out);
    expect(await back.blobDigests()).toEqual(image.digests);
    for (const digest of image.digests) {
      expect((await back.readBlob(digest)).equals(await src.readBlob(digest)), digest).toBe(true);
    }
  });

  it("mounts without `from` when the registry already holds the blob", async () => {
    const bytes = Buffer.from(`a blob stored once, linked twice ${Date.now()}`);
    const digest = await pushBlob(registry.url, "e2e/one", bytes);
    expect(digest).toBe(sha256Of(bytes));

    const before = await fetch(`${registry.url}/v2/e2e/two/blobs/${digest}`, { method: "HEAD" });
    expect(before.status).toBe(404);
    const res = await fetch(`${registry.url}/v2/e2e/two/blobs/uploads/?mount=${digest}`, { method: "POST" });
    expect(res.status).toBe(201);
    expect(res.headers.get("docker-content-digest")).toBe(digest);
    const get = await fetch(`${registry.url}/v2/e2e/two/blobs/${digest}`);
    expect(Buffer.from(await get.arrayBuffer()).equals(bytes)).toBe(true);
  });
});
