import { describe, expect, it } from "vitest";
import { sha256, type Digest } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import { parseManifest, type ImageManifest } from "../../core/oci/manifest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { fieldFromAllotments, serializeField, type Allotment } from "../../core/tdfs/field.ts";
import { parseLabel } from "../../core/tdfs/label.ts";
import {
  checkFieldConfig,
  findFieldLayer,
  partitionIndex,
  partitionManifest,
  type AllotmentFacts,
  type ManifestPartition,
  type ManifestPartitionInput,
} from "../../core/tdfs/partition.ts";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
const hex = (tag: string, n: number): string => `${tag}${n}`.padStart(64, "0");

// A 3x3 field with a hole at (1,1). Allotments are gzip, zstd or plain tar by column, so the
// partition must carry each one's own media type (a plain tar's digest is its diffid).
const cells: Allotment[] = [0, 1, 2]
  .flatMap((row) => [0, 1, 2].map((col) => ({ row, col })))
  .filter(({ row, col }) => row !== 1 || col !== 1)
  .map(({ row, col }) => {
    const diffid = hex("e", row * 3 + col);
    return { row, col, digest: col === 2 ? diffid : hex("d", row * 3 + col), diffid };
  });
const field = fieldFromAllotments(cells);
const mediaTypes = [MediaType.OciLayerGzip, MediaType.OciLayerZstd, MediaType.OciLayerTar];
const facts = new Map<string, AllotmentFacts>(
  cells.map((a) => [`sha256:${a.digest}`, { size: 1000 + a.row * 10 + a.col, mediaType: mediaTypes[a.col] as string }]),
);

// The config as a Go builder writes it: Go's \u0026 escapes, a number no double holds, fields no
// struct knows about, and a history line per base layer.
const configText =
  `{"architecture":"amd64","os":"linux","config":{"Cmd":["sh","-c","a \\u0026\\u0026 b"],"Env":["PATH=/bin"]},` +
  `"created":"2025-01-02T03:04:05Z","x-unknown":{"big":12345678901234567890,"f":1.50},` +
  `"rootfs":{"type":"layers","diff_ids":["sha256:${hex("b", 1)}","sha256:${hex("b", 2)}"]},` +
  `"history":[{"created_by":"base 1"},{"created_by":"base 2"}]}`;
const configBytes = enc(configText);

const baseLayers = [
  {
    mediaType: MediaType.OciLayerGzip,
    digest: `sha256:${hex("a", 1)}`,
    size: 11,
    annotations: { "org.example.layer": "one" },
  },
  { mediaType: MediaType.OciLayerGzip, digest: `sha256:${hex("a", 2)}`, size: 22 },
];

async function childManifest(
  config = configBytes,
  layers: object[] = baseLayers,
): Promise<{ manifest: ImageManifest; manifestBytes: Uint8Array }> {
  const fieldBytes = enc(serializeField(field));
  const json = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: await sha256(config), size: config.length },
    layers: [...layers, { mediaType: MediaType.TdfsField, digest: await sha256(fieldBytes), size: fieldBytes.length }],
    annotations: { "2dfs.image.name": "model", "org.opencontainers.image.title": "3x3" },
    "x-extra": [1, 2],
  };
  const manifestBytes = enc(JSON.stringify(json, null, 2));
  const parsed = parseManifest(manifestBytes, null);
  if (parsed.kind !== "manifest") throw new Error("expected a manifest");
  return { manifest: parsed.manifest, manifestBytes };
}

async function partition(label: string, extra: Partial<ManifestPartitionInput> = {}): Promise<ManifestPartition> {
  const { manifest, manifestBytes } = await childManifest();
  return partitionManifest({
    manifest,
    manifestBytes,
    configBytes,
    field,
    facts,
    selection: parseLabel(label),
    ...extra,
  });
}

async function partitioned(label: string): Promise<Extract<ManifestPartition, { kind: "partition" }>> {
  const result = await partition(label);
  if (result.kind !== "partition") throw new Error(`expected a partition for ${label}`);
  return result;
}

const cellOf = (digest: string): string => {
  const a = cells.find((c) => `sha256:${c.digest}` === digest);
  return a ? `${a.row},${a.col}` : "base";
};

describe("partitionManifest", () => {
  it("lists the base layers, then the selected allotments row-major with their sizes and media types", async () => {
    const result = await partitioned("0.0.0.2--2.0.2.2");
    const manifest = JSON.parse(dec(result.manifest.bytes));
    expect(manifest.layers.slice(0, 2)).toEqual(baseLayers);
    expect(manifest.layers.slice(2)).toEqual(
      ["0,0", "0,1", "0,2", "2,0", "2,1", "2,2"].map((rc) => {
        const [row, col] = rc.split(",").map(Number) as [number, number];
        const a = cells.find((c) => c.row === row && c.col === col) as Allotment;
        return { mediaType: mediaTypes[col], digest: `sha256:${a.digest}`, size: 1000 + row * 10 + col };
      }),
    );
    expect(manifest.layers.some((l: { mediaType: string }) => l.mediaType === MediaType.TdfsField)).toBe(false);
    expect(result.allotments.map((a) => `${a.row},${a.col}`)).toEqual(["0,0", "0,1", "0,2", "2,0", "2,1", "2,2"]);
  });

  it("appends one diff_id and one history entry per allotment, changing nothing else in the config text", async () => {
    const result = await partitioned("0.0.1.1");
    const text = dec(result.config.bytes);
    const ids = [cells[0], cells[1], cells[3]].map((a) => `"sha256:${a?.diffid}"`);
    const history = [cells[0], cells[1], cells[3]].map(
      (a) => `{"created_by":"2dfs allotment (${a?.row},${a?.col})","comment":"sha256:${a?.digest}"}`,
    );
    const expected = configText
      .replace(`"sha256:${hex("b", 2)}"]`, `"sha256:${hex("b", 2)}",${ids.join(",")}]`)
      .replace(`{"created_by":"base 2"}]`, `{"created_by":"base 2"},${history.join(",")}]`);
    expect(text).toBe(expected);
    // What no struct knows survives spelled as it was.
    expect(text).toContain(`"big":12345678901234567890,"f":1.50`);
    expect(text).toContain(`"a \\u0026\\u0026 b"`);
    const config = JSON.parse(text);
    expect(config.rootfs.diff_ids).toHaveLength(5);
    expect(config.history.map((h: { created_by: string }) => h.created_by)).toEqual([
      "base 1",
      "base 2",
      "2dfs allotment (0,0)",
      "2dfs allotment (0,1)",
      "2dfs allotment (1,0)",
    ]);
    expect(result.config.digest).toBe(await sha256(result.config.bytes));
    expect(result.config.size).toBe(result.config.bytes.length);
  });

  it("keeps the manifest's annotations, other fields and key order, and points at the new config", async () => {
    const result = await partitioned("0.0.1.1");
    const manifest = JSON.parse(dec(result.manifest.bytes));
    expect(Object.keys(manifest)).toEqual(["schemaVersion", "mediaType", "config", "layers", "annotations", "x-extra"]);
    expect(manifest.annotations).toEqual({ "2dfs.image.name": "model", "org.opencontainers.image.title": "3x3" });
    expect(manifest["x-extra"]).toEqual([1, 2]);
    expect(manifest.config).toEqual({
      mediaType: MediaType.OciConfig,
      digest: result.config.digest,
      size: result.config.size,
    });
    expect(result.manifest.digest).toBe(await sha256(result.manifest.bytes));
    expect(parseManifest(result.manifest.bytes, null).kind).toBe("manifest");
  });

  it("is deterministic: the same selection, however written, gives the same bytes and digests", async () => {
    const forms = ["0.0.1.1", "0.0.1.1", "1.1.1.1--0.0.1.1--0.1.0.1", "0.0.0.1--1.0.1.1"];
    const results = await Promise.all(forms.map(partitioned));
    for (const r of results) {
      expect(r.manifest.digest).toBe(results[0]?.manifest.digest);
      expect(r.config.digest).toBe(results[0]?.config.digest);
      expect(r.manifest.bytes).toEqual(results[0]?.manifest.bytes);
    }
    expect((await partitioned("0.0.1.2")).manifest.digest).not.toBe(results[0]?.manifest.digest);
  });

  it("adds an allotment once however many rectangles cover it", async () => {
    const result = await partitioned("0.0.2.2--0.0.1.1--1.0.1.2--0.0.2.2");
    const digests = JSON.parse(dec(result.manifest.bytes)).layers.map((l: { digest: string }) => l.digest);
    expect(new Set(digests).size).toBe(digests.length);
    expect(digests.map(cellOf)).toEqual(["base", "base", "0,0", "0,1", "0,2", "1,0", "1,2", "2,0", "2,1", "2,2"]);
    expect(JSON.parse(dec(result.config.bytes)).rootfs.diff_ids).toHaveLength(10);
  });

  it("signals an empty selection, a hole alone included, without building anything", async () => {
    expect(await partition("1.1.1.1")).toEqual({ kind: "nothing-selected" });
    expect(await partition("7.7.9.9")).toEqual({ kind: "nothing-selected" });
  });

  it("builds the base image alone for an empty selection when asked to, with the original config bytes", async () => {
    const result = await partition("1.1.1.1", { allowEmpty: true });
    if (result.kind !== "partition") throw new Error("expected a partition");
    expect(result.allotments).toEqual([]);
    expect(result.config.bytes).toEqual(configBytes);
    expect(result.config.digest).toBe(await sha256(configBytes));
    expect(JSON.parse(dec(result.manifest.bytes)).layers).toEqual(baseLayers);
  });

  it("refuses an allotment the repository has no facts for, naming the cell", async () => {
    const partial = new Map(facts);
    partial.delete(`sha256:${cells[3]?.digest}`);
    const error = await partition("0.0.2.2", { facts: partial }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).code).toBe("MANIFEST_BLOB_UNKNOWN");
    expect((error as RegistryError).message).toContain("(1,0)");
    expect((error as RegistryError).detail).toEqual({ cell: { row: 1, col: 0 }, digest: `sha256:${cells[3]?.digest}` });
  });

  it("takes facts as a plain record too", async () => {
    const record = Object.fromEntries(facts);
    const viaRecord = await partition("0.0.1.1", { facts: record });
    expect(viaRecord.kind === "partition" && viaRecord.manifest.digest).toBe(
      (await partitioned("0.0.1.1")).manifest.digest,
    );
  });

  it("edits the stored manifest text in place: only the config's digest and size and the field layer change", async () => {
    const { manifestBytes } = await childManifest();
    const result = await partitioned("0.0.0.1");
    const text = dec(manifestBytes);
    const stored = JSON.parse(text) as { config: { digest: string; size: number }; layers: object[] };
    const fieldLayer = JSON.stringify(stored.layers.at(-1), null, 2).replaceAll("\n", "\n    ");
    const allotments = cells
      .slice(0, 2)
      .map((a) => JSON.stringify({ mediaType: mediaTypes[a.col], digest: `sha256:${a.digest}`, size: 1000 + a.col }));
    const expected = text
      .replace(`"digest": "${stored.config.digest}"`, `"digest": "${result.config.digest}"`)
      .replace(`"size": ${stored.config.size}`, `"size": ${result.config.size}`)
      .replace(fieldLayer, allotments.join(","));
    expect(expected).not.toBe(text);
    expect(dec(result.manifest.bytes)).toBe(expected);
  });

  it("drops the field layer and its comma for an empty selection, and leaves an empty array when it was alone", async () => {
    const goConfig = enc(`{"rootfs":{"type":"layers","diff_ids":null}}`);
    const { manifest, manifestBytes } = await childManifest(goConfig, []);
    const alone = await partition("1.1.1.1", { manifest, manifestBytes, configBytes: goConfig, allowEmpty: true });
    if (alone.kind !== "partition") throw new Error("expected a partition");
    expect(JSON.parse(dec(alone.manifest.bytes)).layers).toEqual([]);
    const withBase = await partition("1.1.1.1", { allowEmpty: true });
    if (withBase.kind !== "partition") throw new Error("expected a partition");
    expect(dec(withBase.manifest.bytes)).toMatch(/"size": 22\n    }\n  \],/);
  });

  it("partitions a manifest nested 200,000 levels deep, where JSON.stringify would overflow", async () => {
    const { manifest, manifestBytes } = await childManifest();
    const deep = `${'{"a":['.repeat(100_000)}0${"]}".repeat(100_000)}`;
    const text = `${dec(manifestBytes).slice(0, -2)},\n  "x-deep": ${deep}\n}`;
    const result = await partition("0.0.2.2", { manifest, manifestBytes: enc(text) });
    if (result.kind !== "partition") throw new Error("expected a partition");
    const out = dec(result.manifest.bytes);
    expect(out.endsWith(`"x-deep": ${deep}\n}`)).toBe(true);
    expect((JSON.parse(out) as { layers: object[] }).layers).toHaveLength(2 + cells.length);
  });

  it("extends a Go config with null diff_ids and no history (a field over scratch)", async () => {
    const scratch = enc(`{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":null}}`);
    const { manifest, manifestBytes } = await childManifest(scratch, []);
    const result = await partitionManifest({
      manifest,
      manifestBytes,
      configBytes: scratch,
      field,
      facts,
      selection: parseLabel("0.0.0.1"),
    });
    if (result.kind !== "partition") throw new Error("expected a partition");
    expect(dec(result.config.bytes)).toBe(
      `{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:${cells[0]?.diffid}","sha256:${cells[1]?.diffid}"]}}`,
    );
  });

  it("adds diff_ids to a rootfs that has none, and leaves a null history alone", async () => {
    const bare = enc(`{"rootfs":{"type":"layers"},"history":null,"x":1}`);
    const empty = enc(`{"rootfs":{}}`);
    const expected = [
      `{"rootfs":{"type":"layers","diff_ids":["sha256:${cells[0]?.diffid}"]},"history":null,"x":1}`,
      `{"rootfs":{"diff_ids":["sha256:${cells[0]?.diffid}"]}}`,
    ];
    for (const [i, config] of [bare, empty].entries()) {
      const { manifest, manifestBytes } = await childManifest(config, []);
      const result = await partitionManifest({
        manifest,
        manifestBytes,
        configBytes: config,
        field,
        facts,
        selection: parseLabel("0.0.0.0"),
      });
      if (result.kind !== "partition") throw new Error("expected a partition");
      expect(dec(result.config.bytes)).toBe(expected[i]);
    }
  });

  it("appends to a pretty-printed config after the last element, leaving its layout alone", async () => {
    const pretty = enc(
      JSON.stringify(
        { rootfs: { type: "layers", diff_ids: [`sha256:${hex("b", 1)}`, `sha256:${hex("b", 2)}`] }, history: [] },
        null,
        2,
      ),
    );
    const { manifest, manifestBytes } = await childManifest(pretty);
    const result = await partitionManifest({
      manifest,
      manifestBytes,
      configBytes: pretty,
      field,
      facts,
      selection: parseLabel("2.2.2.2"),
    });
    if (result.kind !== "partition") throw new Error("expected a partition");
    const text = dec(result.config.bytes);
    expect(text).toBe(
      dec(pretty)
        .replace(`${hex("b", 2)}"`, `${hex("b", 2)}","sha256:${cells[7]?.diffid}"`)
        .replace(
          `"history": []`,
          `"history": [{"created_by":"2dfs allotment (2,2)","comment":"sha256:${cells[7]?.digest}"}]`,
        ),
    );
  });

  it("refuses a config whose diff_ids do not match the layers", async () => {
    const short = enc(`{"rootfs":{"type":"layers","diff_ids":["sha256:${hex("b", 1)}"]}}`);
    const error = await partition("0.0.0.0", { configBytes: short }).catch((e: unknown) => e);
    expect((error as RegistryError).code).toBe("MANIFEST_INVALID");
    expect((error as RegistryError).detail).toEqual({ layers: 3, diffIds: 1 });
  });
});

describe("findFieldLayer and checkFieldConfig", () => {
  const layer = (mediaType: string, n: number) => ({ mediaType, digest: `sha256:${hex("c", n)}` as Digest, size: n });

  it("finds the field as the last layer, and nothing in an ordinary image", () => {
    const field = layer(MediaType.TdfsField, 3);
    expect(findFieldLayer({ layers: [layer(MediaType.OciLayerGzip, 1), field] })).toEqual(field);
    expect(findFieldLayer({ layers: [layer(MediaType.OciLayerGzip, 1)] })).toBeUndefined();
    expect(findFieldLayer({ layers: [] })).toBeUndefined();
  });

  it("refuses a field that is not last, or more than one", () => {
    const notLast = { layers: [layer(MediaType.TdfsField, 1), layer(MediaType.OciLayerGzip, 2)] };
    const twice = { layers: [layer(MediaType.TdfsField, 1), layer(MediaType.TdfsField, 2)] };
    for (const m of [notLast, twice]) {
      expect(() => findFieldLayer(m)).toThrow(RegistryError);
      expect(() => findFieldLayer(m)).toThrow(/one and last layer/);
    }
  });

  it("checks layers = diff_ids + 1", () => {
    const layers = [layer(MediaType.OciLayerGzip, 1), layer(MediaType.TdfsField, 2)];
    const ok = enc(`{"rootfs":{"type":"layers","diff_ids":["sha256:${hex("b", 1)}"]}}`);
    expect(checkFieldConfig({ layers }, ok)).toEqual(JSON.parse(dec(ok)));
    expect(
      checkFieldConfig({ layers: [layers[1] as (typeof layers)[number]] }, enc(`{"rootfs":{"diff_ids":null}}`)),
    ).toBeTruthy();
    expect(() => checkFieldConfig({ layers }, enc(`{"rootfs":{"diff_ids":[]}}`))).toThrow(/diff_id for every layer/);
    expect(() => checkFieldConfig({ layers }, enc(`{"os":"linux"}`))).toThrow(/no rootfs/);
    expect(() => checkFieldConfig({ layers }, enc(`{"rootfs":{"diff_ids":"x"}}`))).toThrow(/not an array/);
    expect(() => checkFieldConfig({ layers }, enc(`not json`))).toThrow(/image config is not valid JSON/);
    expect(() => checkFieldConfig({ layers }, new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d]))).toThrow(
      /not valid JSON/,
    );
  });
});

describe("partitionIndex", () => {
  const amd = {
    mediaType: MediaType.OciManifest,
    digest: `sha256:${hex("f", 1)}`,
    size: 500,
    platform: { architecture: "amd64", os: "linux" },
    annotations: { "org.example": "amd" },
  };
  const arm = {
    mediaType: MediaType.OciManifest,
    digest: `sha256:${hex("f", 2)}`,
    size: 501,
    platform: { architecture: "arm64", os: "linux", variant: "v8" },
  };
  const attestation = {
    mediaType: MediaType.OciManifest,
    digest: `sha256:${hex("f", 3)}`,
    size: 502,
    platform: { architecture: "unknown", os: "unknown" },
    annotations: { "vnd.docker.reference.type": "attestation-manifest" },
  };
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [amd, arm, attestation],
    annotations: { "2dfs.image.name": "model", "2dfs.partition.jetson": "0.0.0.2" },
  };
  const indexBytes = enc(JSON.stringify(index, null, 3));
  const rewritten = new Map([
    [amd.digest, { digest: `sha256:${hex("9", 1)}` as Digest, size: 700 }],
    [arm.digest, { digest: `sha256:${hex("9", 2)}` as Digest, size: 701 }],
  ]);

  it("rewrites only the children with a field, keeping every platform and annotation", async () => {
    const out = await partitionIndex(indexBytes, rewritten);
    const json = JSON.parse(dec(out.bytes));
    expect(json).toEqual({
      ...index,
      manifests: [
        { ...amd, digest: `sha256:${hex("9", 1)}`, size: 700 },
        { ...arm, digest: `sha256:${hex("9", 2)}`, size: 701 },
        attestation,
      ],
    });
    expect(Object.keys(json.manifests[0])).toEqual(["mediaType", "digest", "size", "platform", "annotations"]);
    expect(out.digest).toBe(await sha256(out.bytes));
    expect(out.size).toBe(out.bytes.length);
    expect(parseManifest(out.bytes, null).kind).toBe("index");
  });

  it("changes nothing in the index text but the rewritten children's digests and sizes, at any depth", async () => {
    const deep = `${"[".repeat(200_000)}${"]".repeat(200_000)}`;
    const text = `${dec(indexBytes).slice(0, -2)},\n   "x-deep": ${deep}\n}`;
    const out = dec((await partitionIndex(enc(text), rewritten)).bytes);
    const expected = text
      .replace(
        `"digest": "${amd.digest}",\n         "size": 500`,
        `"digest": "sha256:${hex("9", 1)}",\n         "size": 700`,
      )
      .replace(
        `"digest": "${arm.digest}",\n         "size": 501`,
        `"digest": "sha256:${hex("9", 2)}",\n         "size": 701`,
      );
    expect(expected).not.toBe(text);
    expect(out).toBe(expected);
  });

  it("is deterministic", async () => {
    const a = await partitionIndex(indexBytes, rewritten);
    const b = await partitionIndex(indexBytes, new Map([...rewritten].reverse()));
    expect(b.bytes).toEqual(a.bytes);
    expect(b.digest).toBe(a.digest);
  });
});
