import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { sandbox, type BuildOutput, type Sandbox } from "./builder-helpers.ts";

const TARGET = "localhost:5000/models/tiny:v1";
const boxes: Sandbox[] = [];
afterEach(async () => {
  await Promise.all(boxes.splice(0).map((b) => b.cleanup()));
});

interface ExportOutput {
  digest: string;
  tag: string;
  platforms: { allotments: { row: number; col: number; digest: string; size: number; mediaType: string }[] }[];
}

async function readBlob(dir: string, digest: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(path.join(dir, "blobs/sha256", digest.slice(7)), "utf8")) as Record<string, unknown>;
}

function skopeoInspect(ref: string, config = false): Record<string, unknown> {
  const args = ["inspect", ...(config ? ["--config"] : []), ref];
  return JSON.parse(execFileSync("skopeo", args, { encoding: "utf8" })) as Record<string, unknown>;
}

describe("export", () => {
  it("writes a partition as an ordinary OCI layout that skopeo reads", async () => {
    const s = await sandbox();
    boxes.push(s);
    const ctx = await s.copyFixture("2x2", "ctx");
    const built = s.json<BuildOutput>(["build", "scratch", TARGET], ctx);
    const cell = (r: number, c: number) => built.allotments.find((a) => a.row === r && a.col === c)!;
    const dest = path.join(s.dir, "out");
    // Overlapping rectangles select (0,0), (0,1), (1,1), each once.
    const exported = s.json<ExportOutput>(["export", `${TARGET}--0.0.0.1--0.1.1.1`, dest]);
    const want = [cell(0, 0), cell(0, 1), cell(1, 1)];
    expect(exported.platforms[0]!.allotments.map((a) => a.digest)).toEqual(want.map((a) => a.digest));

    const index = (await readBlob(dest, exported.digest)) as {
      manifests: { digest: string; platform: unknown }[];
      annotations: Record<string, string>;
    };
    expect(index.manifests[0]!.platform).toEqual({ os: "linux", architecture: "amd64" });
    const manifest = (await readBlob(dest, index.manifests[0]!.digest)) as {
      config: { digest: string };
      layers: { mediaType: string; digest: string; size: number }[];
    };
    expect(manifest.layers).toEqual(want.map((a) => ({ mediaType: a.mediaType, digest: a.digest, size: a.size })));
    const config = (await readBlob(dest, manifest.config.digest)) as {
      rootfs: { diff_ids: string[] };
      history: { created_by: string }[];
    };
    expect(config.rootfs.diff_ids).toEqual(want.map((a) => a.diffid));
    expect(config.history.map((h) => h.created_by)).toEqual([
      "2dfs allotment (0,0)",
      "2dfs allotment (0,1)",
      "2dfs allotment (1,1)",
    ]);

    // The layout names the image by its whole reference, partition label included.
    const name = `${TARGET}--0.0.0.1--0.1.1.1`;
    expect(exported).toMatchObject({ tag: name });
    const layoutIndex = JSON.parse(await readFile(path.join(dest, "index.json"), "utf8")) as {
      manifests: { digest: string; annotations: Record<string, string> }[];
    };
    expect(layoutIndex.manifests.map((m) => [m.digest, m.annotations["org.opencontainers.image.ref.name"]])).toEqual([
      [exported.digest, name],
    ]);
    const seen = skopeoInspect(`oci:${dest}:${name}`);
    expect(seen.Layers).toEqual(want.map((a) => a.digest));
    expect((skopeoInspect(`oci:${dest}:${name}`, true).rootfs as { diff_ids: string[] }).diff_ids).toEqual(
      want.map((a) => a.diffid),
    );
  });

  it("exports a named partition to an OCI archive, and an exported image serves as an oci: BASE", async () => {
    const s = await sandbox();
    boxes.push(s);
    const ctx = await s.copyFixture("2x2", "ctx");
    const built = s.json<BuildOutput>(["build", "scratch", TARGET], ctx);
    const weights = built.allotments.filter((a) => a.row === 1);

    const archive = path.join(s.dir, "weights.tar");
    s.json<ExportOutput>(["export", `${TARGET}--weights`, archive]);
    expect(skopeoInspect(`oci-archive:${archive}`).Layers).toEqual(weights.map((a) => a.digest));

    const layoutDir = path.join(s.dir, "base-layout");
    s.json<ExportOutput>(["export", `${TARGET}--weights`, layoutDir]);
    // The layout holds one image (named localhost:5000/models/tiny:v1--weights): `oci:DIR` finds it.
    const onTop = s.json<BuildOutput>(["build", `oci:${layoutDir}`, "localhost:5000/models/derived:v1"], ctx);
    expect([onTop.rebuilt, onTop.cached]).toEqual([0, 4]);
    const index = (await readBlob(onTop.layout, onTop.digest)) as { manifests: { digest: string }[] };
    const manifest = (await readBlob(onTop.layout, index.manifests[0]!.digest)) as {
      layers: { mediaType: string; digest: string }[];
    };
    expect(manifest.layers.map((l) => l.digest)).toEqual([...weights.map((a) => a.digest), onTop.field.digest]);
    expect(manifest.layers.at(-1)!.mediaType).toBe("application/vnd.oci.image.layer.v1.2dfs.field");

    // A 2DFS image is no BASE, and a label that selects nothing is refused.
    expect(s.run(["build", `oci:${onTop.layout}:v1`, "x:y"], ctx).status).toBe(2);
    const empty = s.run(["export", `${TARGET}--5.5.6.6`, path.join(s.dir, "empty")]);
    expect([empty.status, empty.stderr]).toEqual([2, expect.stringMatching(/selects no allotment/)]);
    const bad = s.run(["export", `${TARGET}--nosuch`, path.join(s.dir, "bad")]);
    expect([bad.status, bad.stderr]).toEqual([2, expect.stringMatching(/unknown partition name "nosuch"/)]);
  });

  it("inspect shows the grid and what each semantic tag pulls", async () => {
    const s = await sandbox();
    boxes.push(s);
    const ctx = await s.copyFixture("2x2", "ctx");
    s.json<BuildOutput>(["build", "scratch", TARGET], ctx);
    const r = s.json<{
      rows: number;
      cols: number;
      cells: { size?: number }[];
      tags: { tag: string; allotments: { row: number; col: number }[]; bytes?: number }[];
    }>(["inspect", TARGET]);
    expect([r.rows, r.cols, r.cells.length]).toEqual([2, 2, 4]);
    expect(r.cells.every((c) => typeof c.size === "number" && c.size > 0)).toBe(true);
    const tags = Object.fromEntries(r.tags.map((t) => [t.tag, t.allotments.map((a) => `${a.row},${a.col}`)]));
    expect(tags).toEqual({
      "v1--0.0.0.1": ["0,0", "0,1"],
      "v1--1.0.1.1": ["1,0", "1,1"],
      "v1--0.0.1.0": ["0,0", "1,0"],
      "v1--0.1.1.1": ["0,1", "1,1"],
      "v1--top": ["0,0", "0,1"],
      "v1--weights": ["1,0", "1,1"],
    });
    const human = s.run(["inspect", TARGET]);
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/row 1 +\S+ \S+ +\S+ \S+/);
  });
});
