/**
 * What a 2DFS push must prove on every push, and what no stored image may turn into: a manifest
 * nested deeper than any JSON parser a client uses accepts is refused, a 2DFS image stored before
 * that rule still partitions without a 5xx, and the field checks run even when the repository
 * already knows the field.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sha256, type Digest } from "../../core/oci/digest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { keys } from "../../worker/storage/keys.ts";
import { anImage } from "../helpers/images/builder.ts";
import type { BuiltImage } from "../helpers/images/types.ts";
import { call as fetchRegistry, expectOciError, registry, worker } from "./helpers/registry.ts";

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
  const digest = await sha256(bytes);
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

/** A 2DFS image over two base layers with gzip, plain tar and zstd allotments at (0,0), (0,1), (1,1), pushed as `repo:tag`. */
function pushImage(
  repo: string,
  tag: string,
  options: { single?: boolean; corner?: boolean } = {},
): Promise<BuiltImage> {
  const builder = anImage()
    .randomLayers(2, 4096)
    .allotment(0, 0)
    .allotment(0, 1, { compression: "none" })
    .allotment(1, 1, { compression: "zstd" })
    .index(!options.single);
  if (options.corner) builder.partition("corner", "1.1.1.1");
  return builder.pushTo(worker, repo, tag);
}

describe("a 2DFS manifest or index nested 200,000 levels deep", () => {
  it("is refused at push with 400 MANIFEST_INVALID, as a manifest and as an index, and nothing is tagged", async () => {
    const img = await pushImage("deep/push", "v1");
    const child = withDeepMember(img.platforms[0]!.manifest.json);
    const index = withDeepMember(img.index!.json);
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
    const img = await pushImage("deep/digest", "v1", { single: true });
    const plain = { ...img.platforms[0]!.manifest.json, layers: [] };
    for (const json of [img.platforms[0]!.manifest.json, plain]) {
      const bytes = withDeepMember(json);
      const digest = await sha256(bytes);
      await expectOciError(await put("deep/digest", digest, bytes, MediaType.OciManifest), 400, "MANIFEST_INVALID");
      await expectOciError(await fetchRegistry(`/v2/deep/digest/manifests/${digest}`), 404, "MANIFEST_UNKNOWN");
    }
  });

  it("is accepted at a depth real manifests could have, and its partitions are served", async () => {
    const img = await pushImage("deep/fine", "v1");
    const bytes = withDeepMember(img.index!.json, 64);
    expect((await put("deep/fine", "v64", bytes, MediaType.OciIndex)).status).toBe(201);
    const { res } = await getManifest("deep/fine", "v64--0.0.1.1");
    expect(res.status).toBe(200);
  });
});

describe("a 2DFS manifest or index that starts with a UTF-8 byte-order mark", () => {
  it("is refused at push with 400 MANIFEST_INVALID, so no partition of it can answer 400 later", async () => {
    const img = await pushImage("bom/push", "v1");
    const bom = (json: Record<string, unknown>) =>
      new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(JSON.stringify(json))]);
    for (const [ref, bytes, type] of [
      ["child", bom(img.platforms[0]!.manifest.json), MediaType.OciManifest],
      ["index", bom(img.index!.json), MediaType.OciIndex],
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
    const img = await pushImage("bom/legacy", "base");
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(JSON.stringify(img.index!.json))]);
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
  async function legacy(repo: string, single: boolean): Promise<{ img: BuiltImage; root: Uint8Array }> {
    const img = await pushImage(repo, "base", { single, corner: true });
    const rootJson = single
      ? { ...img.platforms[0]!.manifest.json, annotations: { "2dfs.partition.corner": "1.1.1.1" } }
      : img.index!.json;
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
      expect(res.headers.get("Docker-Content-Digest")).toBe(await sha256(bytes));
      const text = new TextDecoder().decode(bytes);
      expect(text.endsWith(`,"x-deep":${deepValue(DEPTH)}}`)).toBe(true);
      const doc = JSON.parse(text) as { manifests?: Desc[]; layers?: Desc[] };
      const childBytes = single ? bytes : (await getManifest(repo, doc.manifests![0]!.digest)).bytes;
      const layers = (JSON.parse(new TextDecoder().decode(childBytes)) as { layers: Desc[] }).layers;
      expect(layers.map((l) => l.digest)).toEqual([
        ...img.platforms[0]!.layers.map((l) => l.digest),
        ...img.platforms[0]!.allotments.map((a) => a.layer.digest),
      ]);
      const corner = await getManifest(repo, "v1--corner");
      expect(corner.res.status).toBe(200);
    });
  }
});

describe("field checks on every push", () => {
  /** A manifest like the image's, with another config, pushed as `tag`. */
  async function pushWithConfig(repo: string, img: BuiltImage, tag: string, config: Record<string, unknown>) {
    const p = img.platforms[0]!;
    const bytes = new TextEncoder().encode(JSON.stringify(config));
    const manifest = {
      ...p.manifest.json,
      config: { mediaType: MediaType.OciConfig, digest: await registry.pushBlob(repo, bytes), size: bytes.byteLength },
    };
    return put(repo, tag, new TextEncoder().encode(JSON.stringify(manifest)), MediaType.OciManifest);
  }

  it("refuses a config without diff_ids even when the repository already recorded the field", async () => {
    const repo = "checks/diffids";
    const img = await pushImage(repo, "v1", { single: true });
    expect(await env.BLOBS.head(keys.fieldFacts(repo, img.platforms[0]!.field!.digest))).not.toBeNull();
    const noDiffIds = { ...img.platforms[0]!.configJson, rootfs: { type: "layers", diff_ids: [] } };
    const res = await pushWithConfig(repo, img, "v2", noDiffIds);
    const error = await expectOciError(res, 400, "MANIFEST_INVALID");
    expect(error.message).toMatch(/diff_id/);
    await expectOciError(await fetchRegistry(`/v2/${repo}/manifests/v2`), 404, "MANIFEST_UNKNOWN");
    const noRootfs = { ...img.platforms[0]!.configJson, rootfs: undefined };
    await expectOciError(await pushWithConfig(repo, img, "v3", noRootfs), 400, "MANIFEST_INVALID");
    // The image pushed first still partitions.
    expect((await getManifest(repo, "v1--all")).res.status).toBe(200);
  });

  it("refuses a known field once one of its allotments has left the repository", async () => {
    const repo = "checks/gone";
    const img = await pushImage(repo, "v1", { single: true });
    const gone = img.platforms[0]!.allotments[1]!;
    expect((await fetchRegistry(`/v2/${repo}/blobs/${gone.layer.digest}`, { method: "DELETE" })).status).toBe(202);
    const config = { ...img.platforms[0]!.configJson, config: { Env: ["AGAIN=1"] } };
    const error = await expectOciError(await pushWithConfig(repo, img, "v2", config), 404, "MANIFEST_BLOB_UNKNOWN");
    expect(error.detail).toMatchObject({ cell: { row: gone.row, col: gone.col } });
  });
});
