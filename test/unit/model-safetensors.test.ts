/**
 * The safetensors header reader: the tensors and metadata of a real header, read in two small
 * reads whatever the file's size, and a clear error naming the file for each way a file can be
 * broken (cut short, not safetensors at all, a Git LFS pointer).
 */
import { mkdtemp, open, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSafetensorsHeader, SafetensorsError } from "../../builder-cli/src/model/safetensors.ts";
import { InputError } from "../../builder-cli/src/spec/errors.ts";
import {
  layerTensors,
  SMALL_TRANSFORMER,
  tensorBytes,
  writeSafetensors,
  type TensorSpec,
} from "../helpers/hf-model.ts";

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "2dfs-safetensors-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const TENSORS: TensorSpec[] = [
  { name: "model.embed_tokens.weight", dtype: "BF16", shape: [64, 16] },
  ...layerTensors(0, { ...SMALL_TRANSFORMER, hidden: 16, intermediate: 32 }),
];

/** The 8-byte length (by default the JSON's), then `json` as the header, then `data` bytes. */
async function rawFile(name: string, json: string, opts: { length?: bigint; data?: number } = {}): Promise<string> {
  const file = join(work, name);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(opts.length ?? BigInt(Buffer.byteLength(json)));
  await writeFile(file, Buffer.concat([head, Buffer.from(json), Buffer.alloc(opts.data ?? 0)]));
  return file;
}

describe("readSafetensorsHeader", () => {
  it("reads every tensor's dtype, shape and data offsets, in data order, and the metadata", async () => {
    const file = join(work, "good.safetensors");
    const written = await writeSafetensors(file, TENSORS, { metadata: { format: "pt", note: "x" } });
    const h = await readSafetensorsHeader(file);
    expect(h.fileSize).toBe(written.size);
    expect(h.headerLength).toBe(written.headerLength);
    expect(h.metadata).toEqual({ format: "pt", note: "x" });
    expect(h.tensors.map((t) => t.name)).toEqual(TENSORS.map((t) => t.name));
    let offset = 0;
    for (const [i, t] of h.tensors.entries()) {
      expect(t).toEqual({
        name: TENSORS[i]!.name,
        dtype: "BF16",
        shape: TENSORS[i]!.shape,
        begin: offset,
        end: offset + tensorBytes(TENSORS[i]!),
      });
      offset = t.end;
    }
  });

  it("reads the header of a 64 GiB file at once: only the header is read", async () => {
    const big: TensorSpec[] = [{ name: "w", dtype: "BF16", shape: [32 * 1024, 1024 * 1024] }];
    const file = join(work, "huge.safetensors");
    await writeSafetensors(file, big, { data: "sparse" });
    const started = performance.now();
    const h = await readSafetensorsHeader(file);
    expect(performance.now() - started).toBeLessThan(100);
    expect(h.tensors[0]!.end).toBe(64 * 1024 ** 3);
  });

  const broken: [string, () => Promise<string>, RegExp][] = [
    [
      "shorter than the 8-byte length",
      async () => rawFile("tiny.safetensors", "").then(async (f) => (await truncate(f, 5), f)),
      /tiny\.safetensors: is truncated: 5 bytes, too short for the 8-byte header length/,
    ],
    [
      "cut inside the header",
      () => rawFile("cut-header.safetensors", '{"a":{"dtype":"F32"', { length: 4096n }),
      /cut-header\.safetensors: is truncated: its header says 4096 bytes of JSON, but the file has 19 after the length/,
    ],
    [
      "cut inside the data",
      () => rawFile("cut-data.safetensors", '{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', { data: 10 }),
      /cut-data\.safetensors: is truncated: tensor "w" ends at byte 16 of the data, but the file holds 10 bytes of data/,
    ],
    [
      "a header that is not JSON",
      () => rawFile("garbage.safetensors", "{nope}"),
      /garbage\.safetensors: is not a safetensors file: its header is not JSON/,
    ],
    [
      "a length past the format's limit",
      () => rawFile("other.safetensors", "", { length: 0x7fffffffffn }),
      /other\.safetensors: is not a safetensors file: its header length 549755813887 is over the format's limit of 100 MB/,
    ],
    [
      "a tensor without data_offsets",
      () => rawFile("shapeless.safetensors", '{"w":{"dtype":"F32"}}'),
      /shapeless\.safetensors: tensor "w" is not described as \{dtype, shape, data_offsets: \[begin, end\]\}/,
    ],
    [
      "a Git LFS pointer",
      async () => {
        const file = join(work, "pointer.safetensors");
        await writeFile(file, "version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 123456789\n");
        return file;
      },
      /pointer\.safetensors: is a Git LFS pointer, not the weights: fetch them with `git lfs pull`/,
    ],
  ];

  it.each(broken)("names the file and says what is wrong for %s", async (_, make, message) => {
    const file = await make();
    const error = await readSafetensorsHeader(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SafetensorsError);
    // An InputError: the CLI exits 2, as for any input the user must fix.
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(message);
  });

  it("names the file as the caller shows it", async () => {
    const file = await rawFile("shown.safetensors", "{", { length: 99n });
    await expect(readSafetensorsHeader(file, "models/llm/shown.safetensors")).rejects.toThrow(
      /^models\/llm\/shown\.safetensors: is truncated/,
    );
  });

  it("says a file that cannot be opened cannot be read", async () => {
    await expect(readSafetensorsHeader(join(work, "missing.safetensors"))).rejects.toThrow(
      /missing\.safetensors: cannot be read \(ENOENT\)/,
    );
    const fh = await open(join(work, "empty.safetensors"), "w");
    await fh.close();
    await expect(readSafetensorsHeader(join(work, "empty.safetensors"))).rejects.toThrow(
      /empty\.safetensors: is truncated: 0 bytes/,
    );
  });
});
