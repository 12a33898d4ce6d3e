/**
 * What a 2DFS push must prove on every push, and what no stored image may turn into: a manifest
 * nested deeper than any JSON parser a client uses accepts is refused, a 2DFS image stored before
 * that rule still partitions without a 5xx, and the field checks run even when the repository
 * already knows the field.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Digest } from "../../core/oci/digest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { keys } from "../../worker/storage/keys.ts";
import { expectOciError } from "./helpers/registry.ts";
import { blobOf, fetchRegistry, pushBlob, pushTdfsImage, type PushedImage } from "./helpers/tdfs-image.ts";

const ACCEPT = [MediaType.OciIndex, MediaType.OciManifest].join(", ");
/**
 * Deeper than Go's encoding/json accepts (10,000) by far: a manifest nested this deep once overflowed
 * the partitioner's stack, and every semantic tag of it answered 500.
 */
const DEPTH = 200_000;

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
}

/** A JSON value nested `depth` levels, objects and arrays alternating. Too deep for JSON.stringify. */
function deepValue(depth: number): string {
  const half = depth / 2;
  return `${'{"a":['.repeat(half)}1${"]}".repeat(half)}`;
}

/** The compact JSON of `json` with one more member, `"x-deep"`, holding a value nested `depth` levels. */
function withDeepMember(json: Record<string, unknown>, depth = DEPTH): Uint8Array {
  const text = JSON.stringify(json);
  return new TextEncoder().encode(`${text.slice(0, -1)},"x-deep":${deepValue(depth)}}`);
}

function put(repo: string, ref: string, bytes: Uint8Array, mediaType: string): Promise<Response> {
  return fetchRegistry(`/v2/${repo}/manifests/${ref}`, {
    method: "PUT",
    headers: { "Content-Type": mediaType },
    body: bytes,
  });
}

/** Stores a manifest and tags it the way a push before the depth rule did: straight into R2. */
async function storeAsBefore(repo: string, tag: string | undefined, bytes: Uint8Array, mediaType: string) {
  const { digest } = await blobOf(bytes);
  await env.BLOBS.put(keys.manifest(repo, digest as Digest), bytes, { httpMetadata: { contentType: mediaType } });
  if (tag) await env.BLOBS.put(keys.tag(repo, tag), digest, { customMetadata: { digest } });
  return digest as Digest;
}

async function getManifest(repo: string, ref: string): Promise<{ res: Response; bytes: Uint8Array }> {
  const res = await fetchRegistry(`/v2/${repo}/manifests/${ref}`, { headers: { Accept: ACCEPT } });
  return { res, bytes: new Uint8Array(await res.arrayBuffer()) };
}

/** Every kind of semantic tag of `tag`: rectangles, unions, a named partition, --all, and labels that select nothing or are malformed. */
function semanticTags(tag: string): string[] {
  return [
    `${tag}--0.0.0.0`,
    `${tag}--0.0.1.1`,
    `${tag}--0.0.0.0--1.1.1.1`,
    `${tag}--all`,
    `${tag}--corner`,
    `${tag}--7.7.8.8`,
    `${tag}--1.0.0.0`,
    `${tag}--nope`,
  ];
}

const CELLS = [
  { row: 0, col: 0, kind: "gzip" },
  { row: 0, col: 1, kind: "tar" },
  { row: 1, col: 1, kind: "zstd" },
] as const;

describe("a 2DFS manifest or index nested 200,000 levels deep", () => {
  it("is refused at push with 400 MANIFEST_INVALID, as a manifest and as an index, and nothing is tagged", async () => {
    const img = await pushTdfsImage({ repo: "deep/push", tag: "v1", cells: [...CELLS] });
    const child = withDeepMember(img.platforms[0]!.manifestJson);
    const index = withDeepMember(img.indexJson!);
    for (const [ref, bytes, type] of [
      ["child", child, MediaType.OciManifest],
      ["index", index, MediaType.OciIndex],
    ] as const) {
      const error = await expectOciError(await put("deep/push", ref, bytes, type), 400, "MANIFEST_INVALID");
      expect(JSON.stringify(error)).toMatch(/nest/i);
      await expectOciError(await fetchRegistry(`/v2/deep/push/manifests/${ref}`), 404, "MANIFEST_UNKNOWN");
      for (const semantic of semanticTags(ref)) {
        const res = await fetchRegistry(`/v2/deep/push/manifests/${semantic}`, { headers: { Accept: ACCEPT } });
        expect(res.status, `${semantic}: ${await res.clone().text()}`).toBe(404);
      }
    }
  });

  it("is refused by digest too, and a plain (non-2DFS) manifest as deep is refused the same way", async () => {
    const img = await pushTdfsImage({ repo: "deep/digest", tag: "v1", cells: [...CELLS], single: true });
    const plain = { ...img.platforms[0]!.manifestJson, layers: [] };
    for (const json of [img.platforms[0]!.manifestJson, plain]) {
      const bytes = withDeepMember(json);
      const { digest } = await blobOf(bytes);
      await expectOciError(await put("deep/digest", digest, bytes, MediaType.OciManifest), 400, "MANIFEST_INVALID");
      await expectOciError(await fetchRegistry(`/v2/deep/digest/manifests/${digest}`), 404, "MANIFEST_UNKNOWN");
    }
  });

  it("is accepted at a depth real manifests could have, and its partitions are served", async () => {
    const img = await pushTdfsImage({ repo: "deep/fine", tag: "v1", cells: [...CELLS] });
    const bytes = withDeepMember(img.indexJson!, 64);
    expect((await put("deep/fine", "v64", bytes, MediaType.OciIndex)).status).toBe(201);
    const { res } = await getManifest("deep/fine", "v64--0.0.1.1");
    expect(res.status).toBe(200);
  });
});

describe("a 2DFS manifest or index that starts with a UTF-8 byte-order mark", () => {
  it("is refused at push with 400 MANIFEST_INVALID, so no partition of it can answer 400 later", async () => {
    const img = await pushTdfsImage({ repo: "bom/push", tag: "v1", cells: [...CELLS] });
    const bom = (json: Record<string, unknown>) =>
      new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(JSON.stringify(json))]);
    for (const [ref, bytes, type] of [
      ["child", bom(img.platforms[0]!.manifestJson), MediaType.OciManifest],
      ["index", bom(img.indexJson!), MediaType.OciIndex],
    ] as const) {
      const error = await expectOciError(await put("bom/push", ref, bytes, type), 400, "MANIFEST_INVALID");
      expect(error.message).toMatch(/byte-order mark/);
      for (const semantic of semanticTags(ref)) {
        const res = await fetchRegistry(`/v2/bom/push/manifests/${semantic}`, { headers: { Accept: ACCEPT } });
        expect(res.status, `${semantic}: ${await res.clone().text()}`).toBe(404);
      }
    }
  });

  it("is still partitioned when it was stored before the rule, and the partition has no mark", async () => {
    const img = await pushTdfsImage({ repo: "bom/legacy", tag: "base", cells: [...CELLS] });
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(JSON.stringify(img.indexJson))]);
    await storeAsBefore("bom/legacy", "v1", bytes, MediaType.OciIndex);
    expect((await getManifest("bom/legacy", "v1")).bytes).toEqual(bytes);
    const { res, bytes: part } = await getManifest("bom/legacy", "v1--0.0.1.1");
    expect(res.status, new TextDecoder().decode(part)).toBe(200);
    expect([...part.slice(0, 3)]).not.toEqual([0xef, 0xbb, 0xbf]);
    const index = JSON.parse(new TextDecoder().decode(part)) as { manifests: Desc[] };
    expect(index.manifests).toHaveLength(img.platforms.length);
  });
});

describe("a deeply nested 2DFS image stored before pushes were checked for depth", () => {
  /** The image, with its index (or its one manifest) replaced by a deep copy stored as before. */
  async function legacy(repo: string, single: boolean): Promise<{ img: PushedImage; root: Uint8Array }> {
    const img = await pushTdfsImage({
      repo,
      tag: "base",
      cells: [...CELLS],
      single,
      annotations: { "2dfs.partition.corner": "1.1.1.1" },
    });
    const rootJson = single
      ? { ...img.platforms[0]!.manifestJson, annotations: { "2dfs.partition.corner": "1.1.1.1" } }
      : img.indexJson!;
    const root = withDeepMember(rootJson);
    await storeAsBefore(repo, "v1", root, single ? MediaType.OciManifest : MediaType.OciIndex);
    return { img, root };
  }

  for (const single of [false, true]) {
    const what = single ? "single manifest" : "index";
    it(`never answers 500 for any semantic tag of a deep ${what}, and serves the valid ones`, async () => {
      const repo = `deep/legacy-${single ? "single" : "index"}`;
      const { img, root } = await legacy(repo, single);
      const plain = await getManifest(repo, "v1");
      expect(plain.res.status).toBe(200);
      expect(plain.bytes).toEqual(root);
      for (const tag of semanticTags("v1")) {
        for (const method of ["GET", "HEAD"]) {
          const res = await fetchRegistry(`/v2/${repo}/manifests/${tag}`, { method, headers: { Accept: ACCEPT } });
          const text = await res.text();
          expect(res.status, `${method} ${tag}: ${text}`).toBeLessThan(500);
        }
      }
      // The rectangle (0,0)-(1,1) takes every cell; the deep member is kept as it was stored.
      const { res, bytes } = await getManifest(repo, "v1--0.0.1.1");
      expect(res.status).toBe(200);
      expect(res.headers.get("Docker-Content-Digest")).toBe((await blobOf(bytes)).digest);
      const text = new TextDecoder().decode(bytes);
      expect(text.endsWith(`,"x-deep":${deepValue(DEPTH)}}`)).toBe(true);
      const doc = JSON.parse(text) as { manifests?: Desc[]; layers?: Desc[] };
      const childBytes = single ? bytes : (await getManifest(repo, doc.manifests![0]!.digest)).bytes;
      const layers = (JSON.parse(new TextDecoder().decode(childBytes)) as { layers: Desc[] }).layers;
      expect(layers.map((l) => l.digest)).toEqual([
        ...img.platforms[0]!.baseLayers.map((l) => l.digest),
        ...img.allotments.map((a) => a.blob.digest),
      ]);
      const corner = await getManifest(repo, "v1--corner");
      expect(corner.res.status).toBe(200);
    });
  }
});

describe("field checks on every push", () => {
  /** A manifest like the image's, with another config, pushed as `tag`. */
  async function pushWithConfig(img: PushedImage, tag: string, config: Record<string, unknown>): Promise<Response> {
    const p = img.platforms[0]!;
    const cfg = await pushBlob(img.repo, new TextEncoder().encode(JSON.stringify(config)));
    const manifest = {
      ...p.manifestJson,
      config: { mediaType: MediaType.OciConfig, digest: cfg.digest, size: cfg.size },
    };
    return put(img.repo, tag, new TextEncoder().encode(JSON.stringify(manifest)), MediaType.OciManifest);
  }

  it("refuses a config without diff_ids even when the repository already recorded the field", async () => {
    const img = await pushTdfsImage({ repo: "checks/diffids", tag: "v1", cells: [...CELLS], single: true });
    expect(await env.BLOBS.head(keys.fieldFacts(img.repo, img.field.digest as Digest))).not.toBeNull();
    const noDiffIds = { ...img.platforms[0]!.configJson, rootfs: { type: "layers", diff_ids: [] } };
    const res = await pushWithConfig(img, "v2", noDiffIds);
    const error = await expectOciError(res, 400, "MANIFEST_INVALID");
    expect(error.message).toMatch(/diff_id/);
    await expectOciError(await fetchRegistry(`/v2/${img.repo}/manifests/v2`), 404, "MANIFEST_UNKNOWN");
    const noRootfs = { ...img.platforms[0]!.configJson, rootfs: undefined };
    await expectOciError(await pushWithConfig(img, "v3", noRootfs), 400, "MANIFEST_INVALID");
    // The image pushed first still partitions.
    expect((await getManifest(img.repo, "v1--all")).res.status).toBe(200);
  });

  it("refuses a known field once one of its allotments has left the repository", async () => {
    const img = await pushTdfsImage({ repo: "checks/gone", tag: "v1", cells: [...CELLS], single: true });
    const gone = img.allotments[1]!;
    expect((await fetchRegistry(`/v2/${img.repo}/blobs/${gone.blob.digest}`, { method: "DELETE" })).status).toBe(202);
    const config = { ...img.platforms[0]!.configJson, config: { Env: ["AGAIN=1"] } };
    const error = await expectOciError(await pushWithConfig(img, "v2", config), 404, "MANIFEST_BLOB_UNKNOWN");
    expect(error.detail).toMatchObject({ cell: { row: gone.row, col: gone.col } });
  });
});
