import { readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseField, serializeField } from "../../core/tdfs/field.ts";
import { sandbox, type BuildOutput, type Sandbox } from "./builder-helpers.ts";

const TARGET = "localhost:5000/models/tiny:v1";
const boxes: Sandbox[] = [];
async function box(): Promise<Sandbox> {
  const b = await sandbox();
  boxes.push(b);
  return b;
}
afterEach(async () => {
  await Promise.all(boxes.splice(0).map((b) => b.cleanup()));
});

function cellDigests(out: BuildOutput): Record<string, string> {
  return Object.fromEntries(out.allotments.map((a) => [`${a.row},${a.col}`, a.digest]));
}

describe("build", () => {
  it("gives identical digests for the same inputs in different directories, caches and stores", async () => {
    const a = await box();
    const b = await box();
    const dirA = await a.copyFixture("2x2", "one/place");
    const dirB = await b.copyFixture("2x2", "somewhere/else/entirely");
    const outA = a.json<BuildOutput>(["build", "scratch", TARGET], dirA);
    const outB = b.json<BuildOutput>(["build", "-f", path.join(dirB, "2dfs.json"), "scratch", TARGET]);
    expect(outA.allotments).toHaveLength(4);
    expect(outA.rebuilt).toBe(4);
    expect(cellDigests(outB)).toEqual(cellDigests(outA));
    expect(outB.field).toEqual(outA.field);
    expect(outB.digest).toBe(outA.digest);
  });

  it("rebuilds only the allotment whose file changed, and reuses the rest", async () => {
    const s = await box();
    const dir = await s.copyFixture("2x2", "ctx");
    const first = s.json<BuildOutput>(["build", "scratch", TARGET], dir);
    expect([first.rebuilt, first.cached]).toEqual([4, 0]);

    const again = s.json<BuildOutput>(["build", "scratch", TARGET], dir);
    expect([again.rebuilt, again.cached]).toEqual([0, 4]);
    expect(again.digest).toBe(first.digest);

    await writeFile(path.join(dir, "model/layers/1.bin"), "layer one weights, retrained\n");
    const changed = s.json<BuildOutput>(["build", "scratch", TARGET], dir);
    expect([changed.rebuilt, changed.cached]).toEqual([1, 3]);
    const before = cellDigests(first);
    const after = cellDigests(changed);
    expect(changed.allotments.find((a) => !a.cached)).toMatchObject({ row: 1, col: 0 });
    expect(after["1,0"]).not.toBe(before["1,0"]);
    for (const cell of ["0,0", "0,1", "1,1"]) expect(after[cell]).toBe(before[cell]);
  });

  it("does not trust a cache entry whose blob is gone", async () => {
    const s = await box();
    const dir = await s.copyFixture("2x2", "ctx");
    const first = s.json<BuildOutput>(["build", "scratch", TARGET], dir);
    const victim = first.allotments.find((a) => a.row === 0 && a.col === 1)!;
    await rm(path.join(s.dir, "cache/2dfs-push/blobs/sha256", victim.digest.slice(7)));
    const again = s.json<BuildOutput>(["build", "scratch", TARGET], dir);
    expect([again.rebuilt, again.cached]).toEqual([1, 3]);
    expect(cellDigests(again)).toEqual(cellDigests(first));
    expect((await stat(path.join(s.dir, "cache/2dfs-push/blobs/sha256", victim.digest.slice(7)))).size).toBe(
      victim.size,
    );
  });

  it("builds a sparse field whose blob round-trips through parseField", async () => {
    const s = await box();
    const dir = await s.copyFixture("2x2", "ctx");
    await writeFile(
      path.join(dir, "2dfs.json"),
      JSON.stringify({
        allotments: [
          { src: "config.json", dst: "/config.json", row: 0, col: 0 },
          { src: "model/head.bin", dst: "/head.bin", row: 2, col: 3 },
        ],
      }),
    );
    const out = s.json<BuildOutput>(["build", "scratch", TARGET], dir);
    const bytes = await readFile(path.join(out.layout, "blobs/sha256", out.field.digest.slice(7)));
    const text = bytes.toString("utf8");
    const field = parseField(bytes);
    expect(field.allotments.map((a) => [a.row, a.col])).toEqual([
      [0, 0],
      [2, 3],
    ]);
    expect(serializeField(field)).toBe(text);
    const wire = JSON.parse(text) as {
      rows: { allotments: { digest: string }[]; allotments_size: number }[];
      rows_size: number;
    };
    expect(wire.rows_size).toBe(3);
    expect(wire.rows.map((r) => r.allotments_size)).toEqual([1, 0, 4]);
    expect(wire.rows[2]!.allotments.map((c) => c.digest !== "")).toEqual([false, false, false, true]);
    const head = out.allotments.find((a) => a.row === 2)!;
    expect(field.allotments[1]).toMatchObject({ digest: head.digest.slice(7), diffid: head.diffid.slice(7) });
  });

  it("writes an index with the image name and named partitions over a manifest with the field last", async () => {
    const s = await box();
    const dir = await s.copyFixture("2x2", "ctx");
    const out = s.json<BuildOutput>(["build", "--platform", "linux/arm64", "scratch", TARGET], dir);
    const blob = async (d: string): Promise<Record<string, unknown>> =>
      JSON.parse(await readFile(path.join(out.layout, "blobs/sha256", d.slice(7)), "utf8")) as Record<string, unknown>;
    const index = (await blob(out.digest)) as {
      manifests: { digest: string; platform: unknown }[];
      annotations: Record<string, string>;
    };
    expect(index.annotations).toEqual({
      "2dfs.image.name": "localhost:5000/models/tiny:v1",
      "2dfs.partition.top": "0.0.0.1",
      "2dfs.partition.weights": "1.0.1.1",
    });
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0]!.platform).toEqual({ os: "linux", architecture: "arm64" });
    const manifest = (await blob(index.manifests[0]!.digest)) as {
      config: { digest: string };
      layers: { mediaType: string; digest: string }[];
    };
    expect(manifest.layers).toEqual([
      { mediaType: "application/vnd.oci.image.layer.v1.2dfs.field", digest: out.field.digest, size: out.field.size },
    ]);
    const config = (await blob(manifest.config.digest)) as {
      architecture: string;
      os: string;
      rootfs: { diff_ids: string[] };
    };
    expect(config).toMatchObject({ architecture: "arm64", os: "linux", rootfs: { type: "layers", diff_ids: [] } });
  });
});

describe("invalid 2dfs.json", () => {
  const cases: [string, unknown, RegExp][] = [
    [
      "a missing file",
      {
        allotments: [
          { src: "config.json", dst: "/c", row: 0, col: 0 },
          { src: "nope.bin", dst: "/n", row: 0, col: 1 },
        ],
      },
      /allotments\[1\] \(row 0, col 1\): src "nope.bin" does not exist/,
    ],
    [
      "a duplicate cell",
      {
        allotments: [
          { src: "config.json", dst: "/c", row: 1, col: 1 },
          { src: "README.md", dst: "/r", row: 1, col: 1 },
        ],
      },
      /allotments\[1\] \(row 1, col 1\): cell already used by allotments\[0\]/,
    ],
    [
      "a negative row",
      { allotments: [{ src: "config.json", dst: "/c", row: -1, col: 0 }] },
      /allotments\[0\] \(row -1, col 0\): row must be an integer from 0/,
    ],
    [
      "a non-integer column",
      { allotments: [{ src: "config.json", dst: "/c", row: 0, col: 1.5 }] },
      /allotments\[0\] \(row 0, col 1.5\): col must be an integer from 0/,
    ],
    [
      "mismatched src/dst lengths",
      { allotments: [{ src: ["config.json", "README.md"], dst: ["/c"], row: 0, col: 0 }] },
      /allotments\[0\] \(row 0, col 0\): src has 2 entries but dst has 1/,
    ],
    [
      "a dst escaping the root",
      { allotments: [{ src: "config.json", dst: "/model/../../etc/passwd", row: 0, col: 0 }] },
      /allotments\[0\] \(row 0, col 0\): dst "\/model\/..\/..\/etc\/passwd" escapes the image root/,
    ],
    [
      "a src of the wrong type",
      { allotments: [{ src: 3, dst: "/c", row: 0, col: 0 }] },
      /allotments\[0\] \(row 0, col 0\): src: /,
    ],
    [
      "a bad named partition",
      { allotments: [{ src: "config.json", dst: "/c", row: 0, col: 0 }], partitions: { top: "0.0.x.1" } },
      /partitions\.top: "x" in "0\.0\.x\.1" is not a decimal number/,
    ],
    [
      "a misspelt key in an allotment",
      { allotments: [{ src: "config.json", dst: "/c", row: 0, colum: 1 }] },
      /allotments\[0\]: unknown key "colum" \(did you mean "col"\?\); allowed: src, dst, row, col/,
    ],
    [
      "an unknown top-level key (partition for partitions)",
      { allotments: [{ src: "config.json", dst: "/c", row: 0, col: 0 }], partition: { top: "0.0.0.0" } },
      /top level: unknown key "partition" \(did you mean "partitions"\?\); allowed: allotments, partitions/,
    ],
    [
      "a named partition that selects no allotment",
      {
        allotments: [
          { src: "config.json", dst: "/c", row: 0, col: 0 },
          { src: "README.md", dst: "/r", row: 1, col: 1 },
        ],
        partitions: { hole: "0.1.0.1" },
      },
      /partitions\.hole: "0\.1\.0\.1" selects no allotment/,
    ],
    [
      "a named partition outside the field",
      {
        allotments: [
          { src: "config.json", dst: "/c", row: 0, col: 0 },
          { src: "README.md", dst: "/r", row: 1, col: 1 },
        ],
        partitions: { far: "0.0.0.0--4.0.5.1" },
      },
      /partitions\.far: rectangle 4\.0\.5\.1 lies outside the field \(rows 0-1, columns 0-1\)/,
    ],
    [
      "the reserved partition name all",
      { allotments: [{ src: "config.json", dst: "/c", row: 0, col: 0 }], partitions: { all: "0.0.0.0" } },
      /partitions\.all: "all" is reserved/,
    ],
    [
      "a partition name no tag can spell",
      { allotments: [{ src: "config.json", dst: "/c", row: 0, col: 0 }], partitions: { "jet son": "0.0.0.0" } },
      /partitions\.jet son: a name starts with a letter/,
    ],
    [
      "a partition name too long for a tag",
      { allotments: [{ src: "config.json", dst: "/c", row: 0, col: 0 }], partitions: { ["n".repeat(126)]: "0.0.0.0" } },
      /partitions\.n+: the name is 126 characters; <tag>--<name> is a tag, at most 128 characters/,
    ],
    [
      "a partition name that overflows the target's tag",
      { allotments: [{ src: "config.json", dst: "/c", row: 0, col: 0 }], partitions: { ["n".repeat(125)]: "0.0.0.0" } },
      /partitions\.n{125}: "v1--n{125}" is 129 characters, and a tag is at most 128 characters; shorten the name or the tag/,
    ],
  ];
  for (const [what, spec, message] of cases) {
    it(`refuses ${what} with exit code 2 and stores nothing`, async () => {
      const s = await box();
      const dir = await s.copyFixture("2x2", "ctx");
      await writeFile(path.join(dir, "2dfs.json"), JSON.stringify(spec));
      const r = s.run(["build", "scratch", TARGET], dir);
      expect(r.stderr).toMatch(message);
      expect(r.status).toBe(2);
      await expect(
        stat(path.join(s.dir, "data/2dfs-push/images/localhost_5000/models/tiny/index.json")),
      ).rejects.toThrow();
    });
  }

  it("refuses a target tag containing -- for build and push, with exit code 2", async () => {
    const s = await box();
    const dir = await s.copyFixture("2x2", "ctx");
    const built = s.run(["build", "scratch", "localhost:5000/models/tiny:v1--jetson"], dir);
    expect(built.status).toBe(2);
    expect(built.stderr).toMatch(
      /target tag "v1--jetson" contains "--".*choose a tag without "--" \(e\.g\. "v1-jetson"\)/,
    );
    const pushed = s.run(["push", "localhost:5000/models/tiny:v1--jetson"], dir);
    expect(pushed.status).toBe(2);
    expect(pushed.stderr).toMatch(/target tag "v1--jetson" contains "--"/);
  });

  it("refuses a missing 2dfs.json and unknown options with exit code 2", async () => {
    const s = await box();
    const missing = s.run(["build", "scratch", TARGET]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/cannot read .*2dfs\.json: ENOENT/);
    expect(s.run(["build", "--compression", "brotli", "scratch", TARGET]).status).toBe(2);
    expect(s.run(["build", "--level", "12", "scratch", TARGET], await s.copyFixture("2x2", "ctx")).status).toBe(2);
    expect(s.run(["frobnicate"]).status).toBe(2);
    const help = s.run(["build", "--help"]);
    expect([help.status, help.stdout.includes("--compression")]).toEqual([0, true]);
  });
});
