/**
 * Properties of the partition function (core/tdfs/partition.ts, partition-image.ts) for generated
 * fields, images and selections: which allotments it selects, what the config's diff_ids become,
 * what `all` is, and that the answer depends on the selected cells only, never on how the
 * rectangles were written.
 */
import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect } from "vitest";
import { sha256, type Digest } from "../../core/oci/digest.ts";
import { parseManifest, type ImageManifest } from "../../core/oci/manifest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { serializeField, type Allotment, type Field } from "../../core/tdfs/field.ts";
import type { Rect } from "../../core/tdfs/label.ts";
import { partitionImage, selectionOf, type PartitionSource } from "../../core/tdfs/partition-image.ts";
import { partitionManifest, type AllotmentFacts, type ManifestPartition } from "../../core/tdfs/partition.ts";
import { field, hexOf, rects, rowMajor, type Generated } from "./properties-arbitraries.ts";
import { propertySuite } from "./properties-support.ts";

const { property } = propertySuite("properties-partition");

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

const LAYER_TYPES = [MediaType.OciLayerGzip, MediaType.OciLayerZstd, MediaType.OciLayerTar];

/** A stored 2DFS image: its manifest and config as pushed, its field and what is known of each allotment. */
interface Image {
  field: Field;
  manifest: ImageManifest;
  manifestBytes: Uint8Array;
  configBytes: Uint8Array;
  baseDiffIds: string[];
  facts: Map<string, AllotmentFacts>;
}

/**
 * An image over a generated field: zero to three base layers, a config with or without history,
 * written compact or indented (the partition edits the text, whatever its spacing). Generated as
 * its recipe, so that a counterexample prints the recipe rather than bytes.
 */
const recipe = fc.record({
  field: field({ rows: 7, cols: 7, maxCells: 20 }),
  base: fc.array(fc.tuple(hexOf(32), hexOf(32), fc.nat({ max: 1e6 })), { maxLength: 3 }),
  history: fc.boolean(),
  indent: fc.constantFrom(0, 2, "\t"),
  sizes: fc.array(fc.nat({ max: 1e9 }), { minLength: 20, maxLength: 20 }),
});

const sha256Sync = (bytes: Uint8Array): Digest => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

function build({
  field: f,
  base,
  history,
  indent,
  sizes,
}: typeof recipe extends fc.Arbitrary<infer R> ? R : never): Image {
  const baseDiffIds = base.map(([, diffid]) => `sha256:${diffid}`);
  const config: Record<string, unknown> = {
    architecture: "amd64",
    os: "linux",
    rootfs: { type: "layers", diff_ids: baseDiffIds },
  };
  if (history) config.history = base.map((_, i) => ({ created_by: `base ${i}` }));
  const configBytes = enc(JSON.stringify(config, null, indent));
  const fieldBytes = enc(serializeField(f));
  const json = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: sha256Sync(configBytes), size: configBytes.length },
    layers: [
      ...base.map(([digest, , size]) => ({ mediaType: MediaType.OciLayerGzip, digest: `sha256:${digest}`, size })),
      { mediaType: MediaType.TdfsField, digest: sha256Sync(fieldBytes), size: fieldBytes.length },
    ],
    annotations: { "2dfs.image.name": "model" },
  };
  const manifestBytes = enc(JSON.stringify(json, null, indent));
  const parsed = parseManifest(manifestBytes, null);
  if (parsed.kind !== "manifest") throw new Error("expected a manifest");
  const facts = new Map(
    f.allotments.map((a, i) => [
      `sha256:${a.digest}`,
      { size: sizes[i] ?? 0, mediaType: LAYER_TYPES[(a.row + a.col) % 3] as string },
    ]),
  );
  return { field: f, manifest: parsed.manifest, manifestBytes, configBytes, baseDiffIds, facts };
}

const inside = (r: Rect, a: Allotment): boolean => r.x1 <= a.row && a.row <= r.x2 && r.y1 <= a.col && a.col <= r.y2;

/** The partition function's specification, for one platform manifest. */
const expectedSelection = (f: Field, rs: readonly Rect[]): Allotment[] =>
  f.allotments.filter((a) => rs.some((r) => inside(r, a)));

function partition(img: Image, selection: readonly Rect[], allowEmpty = false): Promise<ManifestPartition> {
  const { field: f, manifest, manifestBytes, configBytes, facts } = img;
  return partitionManifest({ manifest, manifestBytes, configBytes, field: f, facts, selection, allowEmpty });
}

/** The same cells written another way: shuffled, a rectangle repeated, and one cut in two. */
const rewritten = (rs: Rect[]): fc.Arbitrary<Rect[]> =>
  fc
    .tuple(fc.shuffledSubarray(rs, { minLength: rs.length }), fc.nat(), fc.nat(), fc.boolean(), fc.nat())
    .map(([shuffled, dup, cut, byRow, at]) => {
      const out = [...shuffled, rs[dup % rs.length] as Rect];
      const i = cut % out.length;
      const r = out[i] as Rect;
      if (byRow && r.x1 < r.x2) {
        const m = r.x1 + (at % (r.x2 - r.x1));
        out.splice(i, 1, { ...r, x2: m }, { ...r, x1: m + 1 });
      } else if (!byRow && r.y1 < r.y2) {
        const m = r.y1 + (at % (r.y2 - r.y1));
        out.splice(i, 1, { ...r, y2: m }, { ...r, y1: m + 1 });
      }
      return out;
    });

describe("partitionManifest", () => {
  property(
    "selects exactly the allotments inside the rectangles, row-major, each once; layers and diff_ids follow",
    fc.asyncProperty(recipe, rects({ small: 8 }), async (r, rs) => {
      const img = build(r);
      const expected = expectedSelection(img.field, rs);
      const result = await partition(img, rs);
      if (expected.length === 0) {
        expect(result.kind).toBe("nothing-selected");
        return;
      }
      if (result.kind !== "partition") throw new Error(`expected a partition, got ${result.kind}`);

      expect(result.allotments).toEqual(expected);
      expect([...result.allotments].sort(rowMajor)).toEqual(result.allotments);
      expect(new Set(result.allotments.map((a) => `${a.row},${a.col}`)).size).toBe(result.allotments.length);

      const manifest = JSON.parse(dec(result.manifest.bytes));
      const baseLayers = img.manifest.layers.slice(0, -1);
      expect(manifest.layers).toEqual([
        ...baseLayers,
        ...expected.map((a) => ({ ...img.facts.get(`sha256:${a.digest}`), digest: `sha256:${a.digest}` })),
      ]);
      expect(manifest.config).toEqual({
        mediaType: MediaType.OciConfig,
        digest: result.config.digest,
        size: result.config.size,
      });
      expect(result.manifest.digest).toBe(await sha256(result.manifest.bytes));
      expect(result.config.digest).toBe(await sha256(result.config.bytes));

      const config = JSON.parse(dec(result.config.bytes));
      expect(config.rootfs.diff_ids).toEqual([...img.baseDiffIds, ...expected.map((a) => `sha256:${a.diffid}`)]);
      // One diff_id per layer: a runtime unpacks every layer it is given.
      expect(config.rootfs.diff_ids).toHaveLength(manifest.layers.length);
      if (config.history) expect(config.history).toHaveLength(img.baseDiffIds.length + expected.length);
    }),
    2_000,
  );

  property(
    "depends only on the cells selected: rectangles shuffled, repeated or cut give the same bytes and digests",
    fc.asyncProperty(
      recipe,
      rects({ small: 8 }).chain((rs) => fc.tuple(fc.constant(rs), rewritten(rs))),
      async (r, [rs, again]) => {
        const img = build(r);
        const [a, b] = await Promise.all([partition(img, rs), partition(img, again)]);
        expect(b.kind).toBe(a.kind);
        if (a.kind !== "partition" || b.kind !== "partition") return;
        expect(dec(b.manifest.bytes)).toBe(dec(a.manifest.bytes));
        expect(b.manifest.digest).toBe(a.manifest.digest);
        expect(b.config.digest).toBe(a.config.digest);
      },
    ),
    2_000,
  );
});

/** How a config's text may be spelled, beyond what JSON.stringify writes. */
const spelling = fc.record({
  ws: fc.constantFrom("", " ", "\n  ", "\t"),
  escapedKey: fc.boolean(),
  decoyRootfs: fc.boolean(),
  emptyIds: fc.constantFrom("array", "missing", "null"),
  history: fc.constantFrom("none", "array", "null"),
});

/**
 * A config with `ids` as its diff_ids, spelled as some builder might: spacing between every token,
 * a key written with an escape, an earlier `rootfs` that the later one overrides (JSON.parse and
 * Go keep the last), and values no double or JSON.stringify would write back the same.
 */
function configText(ids: readonly string[], sp: Generated<typeof spelling>): string {
  const w = sp.ws;
  const list = (items: readonly string[]): string => `[${w}${items.join(`${w},${w}`)}${w}]`;
  const object = (members: readonly string[]): string => `{${w}${members.join(`${w},${w}`)}${w}}`;
  const member = (key: string, value: string): string => `${key}${w}:${w}${value}`;
  const form = ids.length > 0 ? "array" : sp.emptyIds;
  const rootfs = [member('"type"', '"layers"')];
  if (form !== "missing") rootfs.push(member('"diff_ids"', form === "null" ? "null" : list(ids.map((d) => `"${d}"`))));
  const members = [member('"architecture"', '"amd64"'), member('"x-big"', "12345678901234567890")];
  members.push(member('"x-escaped"', '"a \\u0026 b"'));
  if (sp.decoyRootfs) members.push(member('"rootfs"', object([member('"diff_ids"', list(['"sha256:decoy"']))])));
  members.push(member(sp.escapedKey ? '"root\\u0066s"' : '"rootfs"', object(rootfs)));
  if (sp.history !== "none") {
    const entries = ids.map((_, i) => object([member('"created_by"', `"base ${i}"`)]));
    members.push(member('"history"', sp.history === "null" ? "null" : list(entries)));
  }
  return object(members);
}

describe("partitionManifest: the config's text", () => {
  property(
    "diff_ids and history grow by the selected allotments whatever the spelling; nothing else in the text changes",
    fc.asyncProperty(recipe, spelling, rects({ small: 8 }), async (r, sp, rs) => {
      const base = build(r);
      const text = configText(base.baseDiffIds, sp);
      const img = { ...base, configBytes: enc(text) };
      const expected = expectedSelection(img.field, rs);
      const result = await partition(img, rs);
      if (result.kind !== "partition") {
        expect(expected).toEqual([]);
        return;
      }
      const out = dec(result.config.bytes);
      const before = JSON.parse(text);
      const after = JSON.parse(out);
      expect(after.rootfs.diff_ids).toEqual([...base.baseDiffIds, ...expected.map((a) => `sha256:${a.diffid}`)]);
      if (Array.isArray(before.history)) expect(after.history).toHaveLength(base.baseDiffIds.length + expected.length);
      else expect(after.history).toEqual(before.history);
      expect({ ...after, rootfs: { ...after.rootfs, diff_ids: null }, history: null }).toEqual({
        ...before,
        rootfs: { ...before.rootfs, diff_ids: null },
        history: null,
      });
      // Spelled as it was: the number no double holds, and the escape.
      expect(out).toContain("12345678901234567890");
      expect(out).toContain('"a \\u0026 b"');
    }),
    2_000,
  );
});

/** A source that holds these images (an index's children, or one manifest), found by digest. */
function sourceOf(images: readonly Image[]): PartitionSource {
  const byDigest = <T>(pick: (img: Image) => [string, T]) => new Map(images.map(pick));
  const manifests = byDigest((img) => [sha256Sync(img.manifestBytes), img]);
  const configs = byDigest((img) => [img.manifest.config.digest, img.configBytes]);
  const fields = byDigest((img) => [img.manifest.layers.at(-1)?.digest ?? "", img]);
  return {
    manifest: (digest) => {
      const img = manifests.get(digest);
      return Promise.resolve(img ? { digest, mediaType: MediaType.OciManifest, bytes: img.manifestBytes } : null);
    },
    config: (digest) => Promise.resolve(configs.get(digest) ?? new Uint8Array()),
    field: (_manifest, digest) => Promise.resolve((fields.get(digest) as Image).field),
    facts: (digest) => Promise.resolve((fields.get(digest) as Image).facts),
  };
}

const platforms = ["linux/amd64", "linux/arm64/v8", "linux/riscv64"];

/** An index of the images' manifests, each entry with its platform and an annotation. */
function indexOf(images: readonly Image[]): Uint8Array {
  return enc(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: images.map((img, i) => {
        const [os, architecture, variant] = (platforms[i % platforms.length] as string).split("/");
        return {
          mediaType: MediaType.OciManifest,
          digest: sha256Sync(img.manifestBytes),
          size: img.manifestBytes.length,
          platform: { os, architecture, ...(variant ? { variant } : {}) },
          annotations: { "org.example.entry": String(i) },
        };
      }),
      annotations: { "2dfs.image.name": "model" },
    }),
  );
}

describe("partitionImage", () => {
  property(
    "<tag>--all is the whole field flattened: every allotment, row-major, after the base layers",
    fc.asyncProperty(recipe, async (r) => {
      const img = build(r);
      const stored = {
        digest: sha256Sync(img.manifestBytes),
        mediaType: MediaType.OciManifest,
        bytes: img.manifestBytes,
      };
      const all = selectionOf("all", stored);
      const result = await partitionImage(stored, all, sourceOf([img]));
      if (img.field.allotments.length === 0) {
        expect(result.kind).toBe("nothing-selected");
        return;
      }
      if (result.kind !== "partition") throw new Error(`expected a partition, got ${result.kind}`);
      const [child] = result.manifests;
      expect(child?.allotments).toEqual(img.field.allotments);
      const manifest = JSON.parse(dec(result.root.bytes));
      expect(manifest.layers.map((l: { digest: string }) => l.digest)).toEqual([
        ...img.manifest.layers.slice(0, -1).map((l) => l.digest),
        ...img.field.allotments.map((a) => `sha256:${a.digest}`),
      ]);
      // The same bytes as the manifest partition of the rectangle that covers every cell.
      const whole = await partition(img, [{ x1: 0, y1: 0, x2: 9999, y2: 9999 }]);
      expect(whole.kind === "partition" && dec(whole.manifest.bytes)).toBe(dec(result.root.bytes));
    }),
    500,
  );

  property(
    "an index: each child is its own manifest partition (base alone when nothing of it is selected), every entry keeps its platform and annotations",
    fc.asyncProperty(
      fc.uniqueArray(recipe, { minLength: 1, maxLength: 3, selector: (r) => serializeField(r.field) + r.indent }),
      rects({ small: 8 }),
      async (recipes, rs) => {
        const images = recipes.map(build);
        const bytes = indexOf(images);
        const root = { digest: sha256Sync(bytes), mediaType: MediaType.OciIndex, bytes };
        const result = await partitionImage(root, rs, sourceOf(images));
        const selected = images.map((img) => expectedSelection(img.field, rs));
        if (selected.every((s) => s.length === 0)) {
          expect(result.kind).toBe("nothing-selected");
          return;
        }
        if (result.kind !== "partition") throw new Error(`expected a partition, got ${result.kind}`);
        const children = await Promise.all(images.map((img) => partition(img, rs, true)));
        const index = JSON.parse(dec(result.root.bytes));
        const stored = JSON.parse(dec(bytes));
        expect(index.manifests).toEqual(
          stored.manifests.map((entry: object, i: number) => {
            const child = children[i];
            if (child?.kind !== "partition") throw new Error("allowEmpty always partitions");
            expect(result.manifests[i]?.manifest.bytes).toEqual(child.manifest.bytes);
            expect(result.manifests[i]?.allotments).toEqual(selected[i]);
            return { ...entry, digest: child.manifest.digest, size: child.manifest.size };
          }),
        );
        expect({ ...index, manifests: [] }).toEqual({ ...stored, manifests: [] });
      },
    ),
    500,
  );
});
