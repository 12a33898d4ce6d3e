/**
 * `inspect` as a user reads it: which store it read, what a semantic tag pulls, where each
 * allotment's files land (from plain and compressed tars, long paths included), and partition
 * sizes that count a blob shared by several cells once.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { InspectResult } from "../../builder-cli/src/inspect/inspect.ts";
import { sandbox, type BuildOutput, type Sandbox } from "./builder-helpers.ts";

const TARGET = "localhost:5000/models/tiny:v1";
const boxes: Sandbox[] = [];
afterEach(async () => {
  await Promise.all(boxes.splice(0).map((b) => b.cleanup()));
});

async function box(): Promise<Sandbox> {
  const s = await sandbox();
  boxes.push(s);
  return s;
}

describe("inspect", () => {
  it("says it read the local store, shows each allotment's paths and what a semantic tag pulls", async () => {
    const s = await box();
    const dir = await s.copyFixture("2x2", "ctx");
    const built = s.json<BuildOutput>(["build", "scratch", TARGET], dir);
    const r = s.json<InspectResult>(["inspect", `${TARGET}--weights`]);
    expect(r.origin).toEqual({
      kind: "local",
      location: path.join(s.dir, "data/2dfs-push/images/localhost_5000/models/tiny"),
    });
    expect(r.cells.map((c) => [c.row, c.col, c.paths])).toEqual([
      [0, 0, ["model/config.json"]],
      [0, 1, ["model/README.md", "model/tokenizer.txt"]],
      [1, 0, ["model/layers/0.bin", "model/layers/1.bin"]],
      [1, 1, ["model/head.bin"]],
    ]);
    const weights = built.allotments.filter((a) => a.row === 1);
    expect(r.requested).toEqual({
      kind: "requested",
      tag: "v1--weights",
      selection: "1.0.1.1",
      allotments: [
        { row: 1, col: 0 },
        { row: 1, col: 1 },
      ],
      bytes: weights.reduce((n, a) => n + a.size, 0),
    });

    const human = s.run(["inspect", `${TARGET}--1.1.1.1`]);
    expect(human.status).toBe(0);
    const lines = human.stdout.split("\n");
    expect(lines[0]).toMatch(
      /^read from the local image store .*localhost_5000\/models\/tiny \(--remote reads the registry instead\)$/,
    );
    expect(lines[2]).toMatch(/^v1--1\.1\.1\.1 pulls 1 allotment\(s\), \d+ B: \(1,1\)$/);
    expect(human.stdout).toContain("  (1,0)  /model/layers/0.bin /model/layers/1.bin\n");
  });

  it("names the tag when a semantic tag's partition is unknown", async () => {
    const s = await box();
    s.json(["build", "scratch", TARGET], await s.copyFixture("2x2", "ctx"));
    const r = s.run(["inspect", `${TARGET}--nope`]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^2dfs-push: v1--nope: unknown partition name "nope" \(this image names: top, weights\)/);
  });

  it("reads paths from a plain tar, long names included, and counts a shared blob once", async () => {
    const s = await box();
    const dir = path.join(s.dir, "ctx");
    const deep = `${"d".repeat(60)}/${"e".repeat(60)}/${"f".repeat(40)}.safetensors`;
    await mkdir(path.join(dir, path.dirname(deep)), { recursive: true });
    await writeFile(path.join(dir, deep), "weights");
    await writeFile(path.join(dir, "same.bin"), "the same bytes in two cells");
    await writeFile(
      path.join(dir, "2dfs.json"),
      JSON.stringify({
        allotments: [
          { src: deep, dst: `/w/${deep}`, row: 0, col: 0 },
          { src: "same.bin", dst: "/s/same.bin", row: 0, col: 1 },
          { src: "same.bin", dst: "/s/same.bin", row: 1, col: 1 },
        ],
        partitions: { shared: "0.1.1.1" },
      }),
    );
    const built = s.json<BuildOutput>(["build", "--compression", "none", "scratch", TARGET], dir);
    const same = built.allotments.filter((a) => a.col === 1);
    expect(same[0]!.digest).toBe(same[1]!.digest);
    const r = s.json<InspectResult>(["inspect", TARGET]);
    expect(r.cells.map((c) => c.paths)).toEqual([[`w/${deep}`], ["s/same.bin"], ["s/same.bin"]]);
    const shared = r.tags.find((t) => t.tag === "v1--shared")!;
    expect(shared.allotments).toHaveLength(2);
    expect(shared.bytes).toBe(same[0]!.size);
    // The column tag selects the same two cells.
    expect(r.tags.find((t) => t.tag === "v1--0.1.1.1")!.bytes).toBe(same[0]!.size);
  });
});
