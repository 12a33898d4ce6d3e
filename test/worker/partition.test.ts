import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { sha256, type Digest } from "../../core/oci/digest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { keys } from "../../worker/storage/keys.ts";
import { anImage } from "../helpers/images/builder.ts";
import type { BuiltImage, BuiltPlatform } from "../helpers/images/types.ts";
import { utf8 } from "./helpers/bytes.ts";
import { call as fetchRegistry, registry, worker } from "./helpers/registry.ts";

const ACCEPT = [MediaType.OciIndex, MediaType.OciManifest].join(", ");

/** The multi-platform image below: 3x3 with a hole at (1,1), gzip, plain tar and zstd allotments. */
const ALLOTMENTS = 8;

/**
 * A 2DFS image as the tests below read it: two base layers, a config with a member no struct
 * knows, and annotations on each manifest and each index entry that a partition must keep.
 */
function tdfsImage(platforms: string[] = ["linux/amd64"]) {
  return anImage()
    .platforms(platforms)
    .randomLayers(2, 4096)
    .configFields({ "x-unknown-field": { kept: [1, 2.5, "three"] } })
    .manifestAnnotations((p) => ({ "org.example.platform-note": `${p.os}/${p.architecture}` }))
    .entryAnnotations((p) => ({ "org.example.entry": p.architecture }));
}

/** Pushes a field blob of this exact text. */
async function pushField(repo: string, text: string): Promise<{ digest: Digest; size: number; bytes: Uint8Array }> {
  const bytes = utf8(text);
  return { digest: await registry.pushBlob(repo, bytes), size: bytes.byteLength, bytes };
}

function pushManifest(repo: string, ref: string, json: unknown, mediaType: string): Promise<Response> {
  return registry.putManifest(repo, ref, utf8(JSON.stringify(json)), mediaType);
}

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string };
  annotations?: Record<string, string>;
}

/** The fields of manifests and indexes these tests read. */
interface Doc {
  manifests: Desc[];
  layers: Desc[];
  config: Desc;
  annotations?: Record<string, string>;
}

interface OciErrorBody {
  errors: { code: string; message: string; detail: { cell?: { row: number; col: number } } }[];
}

async function getJson(path: string): Promise<{ res: Response; json: Doc; bytes: Uint8Array }> {
  const res = await fetchRegistry(path, { headers: { Accept: ACCEPT } });
  const bytes = new Uint8Array(await res.arrayBuffer());
  const json =
    res.status === 200 ? JSON.parse(new TextDecoder().decode(bytes)) : JSON.parse(new TextDecoder().decode(bytes));
  return { res, json, bytes };
}

async function allKeys(): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.BLOBS.list(cursor ? { cursor } : {});
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return keys.sort();
}

async function kvKeys(): Promise<string[]> {
  return (await env.CACHE.list()).keys.map((k) => k.name).sort();
}

function cellsOf(p: BuiltPlatform, cells: [number, number][]) {
  return cells.map(([r, c]) => p.allotments.find((a) => a.row === r && a.col === c)!);
}

describe("2DFS partitions of a multi-platform image", () => {
  let img: BuiltImage;
  beforeAll(async () => {
    img = await tdfsImage(["linux/amd64", "linux/arm64"])
      .sharedField()
      .grid(3, 3)
      .hole(1, 1)
      .allotment(0, 1, { compression: "none" })
      .allotment(0, 2, { compression: "zstd" })
      .allotment(2, 0, { compression: "none" })
      .partition("jetson", "0.0.0.2--2.0.2.2")
      .partition("firstcol", "0.0.2.0")
      .pushTo(worker, "ml/model", "v1");
  });

  it("serves the plain tag byte for byte", async () => {
    const { res, bytes } = await getJson("/v2/ml/model/manifests/v1");
    expect(res.status).toBe(200);
    expect(await sha256(bytes)).toBe(img.index!.digest);
    expect(res.headers.get("docker-content-digest")).toBe(img.index!.digest);
  });

  it("answers a rectangle with base layers plus the selected allotments, per platform", async () => {
    const { res, json, bytes } = await getJson("/v2/ml/model/manifests/v1--0.0.1.1");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(MediaType.OciIndex);
    const digest = await sha256(bytes);
    expect(res.headers.get("docker-content-digest")).toBe(digest);
    expect(res.headers.get("etag")).toBe(`"${digest}"`);
    expect(json.annotations).toEqual(img.index!.json.annotations);
    expect(json.manifests).toHaveLength(2);
    for (const [i, entry] of json.manifests.entries()) {
      const p = img.platforms[i]!;
      const expected = cellsOf(p, [
        [0, 0],
        [0, 1],
        [1, 0],
      ]);
      expect(entry.platform).toEqual(p.platform);
      expect(entry.annotations).toEqual({ "org.example.entry": p.platform.architecture });
      const child = await getJson(`/v2/ml/model/manifests/${entry.digest}`);
      expect(child.res.status).toBe(200);
      expect(await sha256(child.bytes)).toBe(entry.digest);
      expect(child.bytes.byteLength).toBe(entry.size);
      expect(child.json.annotations).toEqual(p.manifest.json.annotations);
      expect(child.json.layers).toEqual([
        ...p.layers.map((l) => ({ mediaType: MediaType.OciLayerGzip, digest: l.digest, size: l.size })),
        ...expected.map((a) => ({
          mediaType: a.layer.descriptor.mediaType,
          digest: a.layer.digest,
          size: a.layer.size,
        })),
      ]);
      // The config: the original with diff_ids and history extended, nothing else changed.
      const cfgRes = await fetchRegistry(`/v2/ml/model/blobs/${child.json.config.digest}`);
      expect(cfgRes.status).toBe(200);
      const cfgBytes = new Uint8Array(await cfgRes.arrayBuffer());
      expect(await sha256(cfgBytes)).toBe(child.json.config.digest);
      expect(cfgBytes.byteLength).toBe(child.json.config.size);
      const cfg = JSON.parse(new TextDecoder().decode(cfgBytes));
      expect(cfg.rootfs.diff_ids).toEqual([
        ...p.layers.map((l) => l.diffId),
        ...expected.map((a) => `sha256:${a.diffid}`),
      ]);
      expect(cfg.history).toHaveLength(2 + expected.length);
      expect(cfg.history.slice(0, 2)).toEqual(p.configJson.history);
      expect(cfg["x-unknown-field"]).toEqual(p.configJson["x-unknown-field"]);
      expect(cfg.config).toEqual(p.configJson.config);
      // Every allotment resolves by digest, byte for byte.
      for (const a of expected) {
        const b = await fetchRegistry(`/v2/ml/model/blobs/${a.layer.digest}`);
        expect(b.status).toBe(200);
        expect(await sha256(new Uint8Array(await b.arrayBuffer()))).toBe(a.layer.digest);
      }
    }
  });

  it("gives HEAD the same digest as GET, without writing anything", async () => {
    const get = await fetchRegistry("/v2/ml/model/manifests/v1--0.0.1.1", { headers: { Accept: ACCEPT } });
    await get.arrayBuffer();
    const before = await allKeys();
    const head = await fetchRegistry("/v2/ml/model/manifests/v1--0.0.1.1", {
      method: "HEAD",
      headers: { Accept: ACCEPT },
    });
    expect(head.status).toBe(200);
    expect(head.headers.get("docker-content-digest")).toBe(get.headers.get("docker-content-digest"));
    expect(head.headers.get("content-length")).toBe(get.headers.get("content-length"));
    expect(await allKeys()).toEqual(before);
  });

  it("treats labels that select the same cells as the same partition, served from the cache", async () => {
    const a = await getJson("/v2/ml/model/manifests/v1--0.0.1.1");
    const kvBefore = await kvKeys();
    const r2Before = await allKeys();
    const b = await getJson("/v2/ml/model/manifests/v1--0.0.0.1--1.0.1.1");
    const c = await getJson("/v2/ml/model/manifests/v1--1.1.1.1--0.0.1.1--0.1.0.1");
    expect(b.res.headers.get("docker-content-digest")).toBe(a.res.headers.get("docker-content-digest"));
    expect(c.res.headers.get("docker-content-digest")).toBe(a.res.headers.get("docker-content-digest"));
    expect(b.bytes).toEqual(a.bytes);
    // Served from the selection's cache entry: nothing computed or stored again in R2; KV only
    // learns each new spelling of the label, once.
    expect(await allKeys()).toEqual(r2Before);
    const kvAfter = await kvKeys();
    expect(kvAfter.filter((k) => !kvBefore.includes(k))).toHaveLength(2);
    await getJson("/v2/ml/model/manifests/v1--0.0.0.1--1.0.1.1");
    expect(await kvKeys()).toEqual(kvAfter);
  });

  it("keeps a partition in use alive for the collector: reads refresh a day-old lastAccess", async () => {
    const { json } = await getJson("/v2/ml/model/manifests/v1--2.2.2.2");
    const childKey = keys.derivedManifest("ml/model", json.manifests[0]!.digest as Digest);
    const child = await env.BLOBS.get(childKey);
    const bytes = await child!.arrayBuffer();
    await env.BLOBS.put(childKey, bytes, { httpMetadata: child!.httpMetadata!, customMetadata: { lastAccess: "0" } });
    const configDigest = (JSON.parse(new TextDecoder().decode(bytes)) as Doc).config.digest as Digest;
    const configKey = keys.derivedBlob("ml/model", configDigest);
    const config = await env.BLOBS.get(configKey);
    await env.BLOBS.put(configKey, await config!.arrayBuffer(), { customMetadata: { lastAccess: "0" } });

    const before = Date.now();
    expect((await fetchRegistry(`/v2/ml/model/manifests/${json.manifests[0]!.digest}`)).status).toBe(200);
    expect((await fetchRegistry(`/v2/ml/model/blobs/${configDigest}`, { method: "HEAD" })).status).toBe(200);
    for (const key of [childKey, configKey]) {
      const head = await env.BLOBS.head(key);
      expect(Number(head!.customMetadata!.lastAccess)).toBeGreaterThanOrEqual(before);
    }
    // The object itself is unchanged.
    expect(await (await env.BLOBS.get(childKey))!.arrayBuffer()).toEqual(bytes);
  });

  it("answers a repeated label from KV without reading the image", async () => {
    await getJson("/v2/ml/model/manifests/v1--0.0.2.0");
    const rootKey = keys.manifest("ml/model", img.index!.digest as Digest);
    // Were the image read again, this broken root would make the request fail.
    const root = await env.BLOBS.get(rootKey);
    const rootBytes = await root!.arrayBuffer();
    await env.BLOBS.put(rootKey, "not json", {
      httpMetadata: root!.httpMetadata!,
    });
    try {
      const again = await getJson("/v2/ml/model/manifests/v1--0.0.2.0");
      expect(again.res.status).toBe(200);
    } finally {
      await env.BLOBS.put(rootKey, rootBytes, {
        httpMetadata: root!.httpMetadata!,
      });
    }
  });

  it("never adds an allotment twice when rectangles overlap", async () => {
    const { json } = await getJson("/v2/ml/model/manifests/v1--0.0.2.2--0.0.0.0--1.0.2.0");
    const child = await getJson(`/v2/ml/model/manifests/${json.manifests[0]!.digest}`);
    const digests = child.json.layers.map((l) => l.digest);
    expect(new Set(digests).size).toBe(digests.length);
    expect(digests).toHaveLength(2 + 8);
  });

  it("resolves a named partition exactly like its coordinates", async () => {
    const named = await getJson("/v2/ml/model/manifests/v1--jetson");
    const coords = await getJson("/v2/ml/model/manifests/v1--0.0.0.2--2.0.2.2");
    expect(named.res.status).toBe(200);
    expect(named.res.headers.get("docker-content-digest")).toBe(coords.res.headers.get("docker-content-digest"));
    const child = await getJson(`/v2/ml/model/manifests/${named.json.manifests[1]!.digest}`);
    const want = cellsOf(img.platforms[1]!, [
      [0, 0],
      [0, 1],
      [0, 2],
      [2, 0],
      [2, 1],
      [2, 2],
    ]).map((a) => a.layer.digest);
    expect(child.json.layers.slice(2).map((l) => l.digest)).toEqual(want);
  });

  it("flattens the whole field with --all", async () => {
    const { res, json } = await getJson("/v2/ml/model/manifests/v1--all");
    expect(res.status).toBe(200);
    const child = await getJson(`/v2/ml/model/manifests/${json.manifests[0]!.digest}`);
    expect(child.json.layers.map((l) => l.mediaType)).not.toContain(MediaType.TdfsField);
    expect(child.json.layers).toHaveLength(2 + ALLOTMENTS);
  });

  it.each([
    ["selects nothing", "v1--1.1.1.1", /selects no allotment/],
    ["is out of the field", "v1--5.5.6.6", /selects no allotment/],
    ["is inverted", "v1--1.0.0.0", /x1 <= x2|inverted|greater/i],
    ["has too few numbers", "v1--0.0.1", /semantic tag is/],
    ["has non-decimal numbers", "v1--0.0.0x1.1", /semantic tag is/],
    ["has an empty rectangle", "v1--0.0.1.1----", /semantic tag is/],
    ["names an unknown partition", "v1--gpu", /semantic tag is/],
    ["has too many rectangles", `v1${"--0.0.0.0".repeat(17)}`, /semantic tag/],
    ["has an unknown base tag", "v9--0.0.1.1", /does not exist/],
  ])("answers 404 MANIFEST_UNKNOWN when the label %s, and writes nothing", async (_why, tag, message) => {
    const r2Before = await allKeys();
    const kvBefore = await kvKeys();
    for (const method of ["GET", "HEAD"]) {
      const res = await fetchRegistry(`/v2/ml/model/manifests/${tag}`, { method, headers: { Accept: ACCEPT } });
      expect(res.status).toBe(404);
      if (method === "GET") {
        const body = (await res.json()) as { errors: { code: string; message: string }[] };
        expect(body.errors[0]!.code).toBe("MANIFEST_UNKNOWN");
        expect(body.errors[0]!.message).toMatch(message);
      }
    }
    expect(await allKeys()).toEqual(r2Before);
    expect(await kvKeys()).toEqual(kvBefore);
  });

  it("takes a partition copied back into its repository, adopting the derived config a HEAD called present", async () => {
    const top = await getJson("/v2/ml/model/manifests/v1--0.0.1.1");
    const child = await getJson(`/v2/ml/model/manifests/${top.json.manifests[0]!.digest}`);
    const config = child.json.config.digest as Digest;
    // What skopeo and cosign do before pushing a manifest: HEAD each blob, and skip the ones present.
    expect((await fetchRegistry(`/v2/ml/model/blobs/${config}`, { method: "HEAD" })).status).toBe(200);
    expect(await env.BLOBS.head(keys.blobLink("ml/model", config))).toBeNull();
    const res = await pushManifest("ml/model", "copied", child.json, MediaType.OciManifest);
    expect(res.status, await res.text()).toBe(201);
    // The manifest holds the config as a blob of the repository now, not as a collectable derived object.
    expect(await env.BLOBS.head(keys.blobLink("ml/model", config))).not.toBeNull();
    const got = await fetchRegistry(`/v2/ml/model/blobs/${config}`);
    expect(await sha256(new Uint8Array(await got.arrayBuffer()))).toBe(config);
  });

  it("serves a literal tag that looks like a semantic tag as stored", async () => {
    const plain = img.platforms[0]!;
    const res = await registry.putManifest("ml/model", "v1--0.0.0.0", plain.manifest.bytes, MediaType.OciManifest);
    expect(res.status).toBe(201);
    const got = await getJson("/v2/ml/model/manifests/v1--0.0.0.0");
    expect(got.res.headers.get("docker-content-digest")).toBe(plain.manifest.digest);
  });
});

describe("2DFS partitions of a single-manifest image", () => {
  it("answers with a partitioned single manifest", async () => {
    const img = await tdfsImage()
      .allotment(0, 0)
      .allotment(0, 1, { compression: "none" })
      .index(false)
      .pushTo(worker, "ml/single", "v1");
    const { res, json } = await getJson("/v2/ml/single/manifests/v1--0.1.0.1");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(MediaType.OciManifest);
    const a = img.platforms[0]!.allotments[1]!;
    expect(json.layers.at(-1)).toEqual({
      mediaType: MediaType.OciLayerTar,
      digest: a.layer.digest,
      size: a.layer.size,
    });
    expect(json.layers).toHaveLength(3);
  });
});

describe("pushing a 2DFS image", () => {
  it("refuses a field that lists an allotment the repository lacks, naming the cell", async () => {
    const img = await tdfsImage().allotment(0, 0).index(false).pushTo(worker, "ml/ok", "v1");
    const p = img.platforms[0]!;
    const ghost = "ab".repeat(32);
    const [a] = img.platforms[0]!.allotments;
    const field = await pushField(
      "ml/ok",
      `{"rows":[{"allotments":[{"row":0,"col":0,"digest":"${a!.digest}","diffid":"${a!.diffid}"},{"row":0,"col":1,"digest":"${ghost}","diffid":"${ghost}"}],"allotments_size":2}],"rows_size":1,"owner":""}`,
    );
    const manifest = {
      ...p.manifest.json,
      layers: [
        ...(p.manifest.json.layers as Desc[]).slice(0, -1),
        { mediaType: MediaType.TdfsField, digest: field.digest, size: field.size },
      ],
    };
    const res = await pushManifest("ml/ok", "v2", manifest, MediaType.OciManifest);
    expect(res.status).toBe(404);
    const body = (await res.json()) as OciErrorBody;
    expect(body.errors[0]!.code).toBe("MANIFEST_BLOB_UNKNOWN");
    expect(body.errors[0]!.detail.cell).toEqual({ row: 0, col: 1 });
    expect((await fetchRegistry("/v2/ml/ok/manifests/v2")).status).toBe(404);
  });

  it("refuses a malformed field", async () => {
    const img = await tdfsImage().allotment(0, 0).index(false).pushTo(worker, "ml/bad", "v1");
    const p = img.platforms[0]!;
    const field = await pushField(
      "ml/bad",
      `{"rows":[{"allotments":[{"row":0,"col":0,"digest":"XYZ","diffid":""}],"allotments_size":1}],"rows_size":1,"owner":""}`,
    );
    const manifest = {
      ...p.manifest.json,
      layers: [
        ...(p.manifest.json.layers as Desc[]).slice(0, -1),
        { mediaType: MediaType.TdfsField, digest: field.digest, size: field.size },
      ],
    };
    const res = await pushManifest("ml/bad", "v2", manifest, MediaType.OciManifest);
    expect(res.status).toBe(400);
    expect(((await res.json()) as OciErrorBody).errors[0]!.code).toBe("MANIFEST_INVALID");
    expect(await sha256(field.bytes)).toBe(field.digest);
  });
});
