/**
 * Manifest endpoints where the distribution spec v1.1 is exact: a pull by a reference that cannot
 * be a tag is a 404 (end-3 allows nothing else), a push by digest may carry `?tag=` parameters
 * answered with one `OCI-Tag` per tag, and manifest bytes are read as Go clients read JSON.
 */
import { describe, expect, it } from "vitest";
import { anImage, anIndex } from "../helpers/images/builder.ts";
import { pushContents } from "../helpers/images/push.ts";
import type { BuiltManifest } from "../helpers/images/types.ts";
import { digestOf, utf8 } from "./helpers/bytes.ts";
import { bytesOf, call, expectOciError, expectStatus, registry, uniqueRepo, worker } from "./helpers/registry.ts";

function putByDigest(repo: string, m: BuiltManifest, query: string): Promise<Response> {
  return call(`/v2/${repo}/manifests/${m.digest}${query}`, {
    method: "PUT",
    headers: { "Content-Type": m.mediaType },
    body: m.bytes,
  });
}

async function tagsOf(repo: string): Promise<string[]> {
  const res = await registry.tags(repo);
  await expectStatus(res, 200);
  return ((await res.json()) as { tags: string[] }).tags;
}

/** The values of every `OCI-Tag` header, however the runtime folds repeated fields. */
function ociTags(res: Response): string[] {
  const v = res.headers.get("OCI-Tag");
  return v === null ? [] : v.split(",").map((t) => t.trim());
}

describe("GET and HEAD of a manifest by a reference that is not a valid tag", () => {
  const invalid = [".INVALID_MANIFEST_NAME", "-dash", "t".repeat(129), "a+b", "caf%C3%A9"];

  for (const ref of invalid) {
    it(`answers ${ref.length > 40 ? "a 129-character tag" : ref} with 404 MANIFEST_UNKNOWN and the reason`, async () => {
      const repo = uniqueRepo("conformance");
      await anImage().randomLayers(1).pushTo(worker, repo, "v1");
      const error = await expectOciError(await registry.manifest(repo, ref), 404, "MANIFEST_UNKNOWN");
      expect(JSON.stringify(error.detail)).toMatch(/not a valid tag/);
      const head = await registry.manifest(repo, ref, { method: "HEAD" });
      expect(head.status).toBe(404);
      await head.arrayBuffer();
      // A push by the same reference is still a bad request.
      const img = await anImage().randomLayers(1).pushTo(worker, repo);
      await expectOciError(await registry.putManifest(repo, ref, img.bytes, img.mediaType), 400, "TAG_INVALID");
    });
  }
});

describe("PUT /v2/<name>/manifests/<digest>?tag=...", () => {
  it("points every tag at the manifest and answers one OCI-Tag per tag", async () => {
    const repo = uniqueRepo("conformance");
    const img = await anImage().randomLayers(1).build();
    await pushContents(worker, repo, img);
    const res = await putByDigest(repo, img, "?tag=1.2.3&tag=1.2&tag=latest");
    await expectStatus(res, 201);
    expect(res.headers.get("Docker-Content-Digest")).toBe(img.digest);
    expect(ociTags(res)).toEqual(["1.2.3", "1.2", "latest"]);
    expect(await tagsOf(repo)).toEqual(["1.2", "1.2.3", "latest"]);
    for (const tag of ["1.2.3", "1.2", "latest"]) {
      const got = await registry.manifest(repo, tag, { headers: { Accept: img.mediaType } });
      await expectStatus(got, 200);
      expect(got.headers.get("Docker-Content-Digest")).toBe(img.digest);
      expect(await bytesOf(got)).toEqual(img.bytes);
    }
  });

  it("takes an index with tags, moves an existing tag, and names a repeated tag once", async () => {
    const repo = uniqueRepo("conformance");
    const old = await anImage().randomLayers(1).pushTo(worker, repo, "stable");
    const index = await anIndex()
      .of(await anImage().randomLayers(1).build(), await anImage().platforms(["linux/arm64"]).build())
      .build();
    await pushContents(worker, repo, index);
    const res = await putByDigest(repo, index, "?tag=stable&tag=multi&tag=stable");
    await expectStatus(res, 201);
    expect(ociTags(res)).toEqual(["stable", "multi"]);
    const moved = await registry.manifest(repo, "stable", { headers: { Accept: index.mediaType } });
    expect(moved.headers.get("Docker-Content-Digest")).toBe(index.digest);
    await moved.arrayBuffer();
    // The manifest the tag used to name is still there by digest.
    const before = await registry.manifest(repo, old.digest, { headers: { Accept: old.mediaType } });
    await expectStatus(before, 200);
    await before.arrayBuffer();
  });

  it("refuses the whole push with 400 TAG_INVALID when one tag is invalid, before anything is stored", async () => {
    const repo = uniqueRepo("conformance");
    await anImage().randomLayers(1).pushTo(worker, repo, "keep");
    const img = await anImage().randomLayers(1).build();
    await pushContents(worker, repo, img);
    for (const query of ["?tag=good&tag=.bad", "?tag=-dash&tag=good", `?tag=good&tag=${"t".repeat(129)}`, "?tag="]) {
      const error = await expectOciError(await putByDigest(repo, img, query), 400, "TAG_INVALID");
      expect(JSON.stringify(error.detail)).toMatch(/tag/);
    }
    await expectOciError(await registry.manifest(repo, img.digest), 404, "MANIFEST_UNKNOWN");
    expect(await tagsOf(repo)).toEqual(["keep"]);
  });

  it("tags nothing when the manifest itself is refused", async () => {
    const repo = uniqueRepo("conformance");
    const img = await anImage().randomLayers(1).build();
    // Blobs not uploaded: the manifest references unknown blobs.
    await expectOciError(await putByDigest(repo, img, "?tag=a&tag=b"), 404, "MANIFEST_BLOB_UNKNOWN");
    await pushContents(worker, repo, img);
    const other = await digestOf(utf8("other"));
    const res = await call(`/v2/${repo}/manifests/${other}?tag=a`, {
      method: "PUT",
      headers: { "Content-Type": img.mediaType },
      body: img.bytes,
    });
    await expectOciError(res, 400, "DIGEST_INVALID");
    expect(await tagsOf(repo)).toEqual([]);
  });

  it("accepts 100 tags in one push and answers 414 for more, storing nothing", async () => {
    const repo = uniqueRepo("conformance");
    const img = await anImage().randomLayers(1).build();
    await pushContents(worker, repo, img);
    const many = (n: number) => `?${Array.from({ length: n }, (_, i) => `tag=t${i}`).join("&")}`;
    const refused = await putByDigest(repo, img, many(101));
    await expectOciError(refused, 414, "TOO_MANY_TAGS");
    expect(await tagsOf(repo)).toEqual([]);
    const res = await putByDigest(repo, img, many(100));
    await expectStatus(res, 201);
    expect(ociTags(res)).toHaveLength(100);
    expect(await tagsOf(repo)).toHaveLength(100);
  });

  it("leaves a push by tag as it was: `tag` parameters are only for pushes by digest", async () => {
    const repo = uniqueRepo("conformance");
    const img = await anImage().randomLayers(1).build();
    await pushContents(worker, repo, img);
    const res = await call(`/v2/${repo}/manifests/v1?tag=other`, {
      method: "PUT",
      headers: { "Content-Type": img.mediaType },
      body: img.bytes,
    });
    await expectStatus(res, 201);
    expect(res.headers.get("OCI-Tag")).toBeNull();
    expect(await tagsOf(repo)).toEqual(["v1"]);
  });
});

describe("manifest bytes read as Go clients read JSON", () => {
  const BOM = [0xef, 0xbb, 0xbf];

  it("refuses a manifest or index that starts with a UTF-8 byte-order mark, by tag and by digest", async () => {
    const repo = uniqueRepo("conformance");
    const img = await anImage().randomLayers(1).build();
    const index = await anIndex().of(img).build();
    await pushContents(worker, repo, img);
    await registry.pushManifest(repo, img.digest, img.bytes, img.mediaType);
    for (const m of [img, index]) {
      const bytes = new Uint8Array([...BOM, ...m.bytes]);
      const digest = await digestOf(bytes);
      for (const ref of ["bom", digest]) {
        const error = await expectOciError(
          await registry.putManifest(repo, ref, bytes, m.mediaType),
          400,
          "MANIFEST_INVALID",
        );
        expect(JSON.stringify(error)).toMatch(/byte.order mark|BOM/i);
      }
      await expectOciError(await registry.manifest(repo, digest), 404, "MANIFEST_UNKNOWN");
    }
    await expectOciError(await registry.manifest(repo, "bom"), 404, "MANIFEST_UNKNOWN");
  });

  it("still accepts leading whitespace, which JSON allows", async () => {
    const repo = uniqueRepo("conformance");
    const img = await anImage().randomLayers(1).build();
    await pushContents(worker, repo, img);
    const bytes = utf8(` \n\t${new TextDecoder().decode(img.bytes)}`);
    await registry.pushManifest(repo, "ws", bytes, img.mediaType);
  });
});
