import { describe, expect, it } from "vitest";
import { hexOf } from "../../core/oci/digest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { anImage, anIndex } from "../helpers/images/builder.ts";
import type { BuiltManifest } from "../helpers/images/types.ts";
import { digestOf, randomBytes, utf8 } from "./helpers/bytes.ts";
import { bytesOf, expectOciError, expectStatus, registry, uniqueRepo, worker } from "./helpers/registry.ts";

const IMMUTABLE = "public, max-age=31536000, immutable";

/** Asserts that GET of `reference` serves the manifest's exact bytes with its headers. */
async function expectServed(repo: string, reference: string, m: BuiltManifest): Promise<void> {
  const res = await registry.manifest(repo, reference, { headers: { Accept: m.mediaType } });
  expect(res.status).toBe(200);
  expect(res.headers.get("Content-Type")).toBe(m.mediaType);
  expect(res.headers.get("Docker-Content-Digest")).toBe(m.digest);
  expect(res.headers.get("ETag")).toBe(`"${m.digest}"`);
  expect(res.headers.get("Content-Length")).toBe(String(m.bytes.byteLength));
  expect(await bytesOf(res)).toEqual(m.bytes);
}

describe("PUT /v2/<name>/manifests/<reference>", () => {
  it("stores an image manifest by tag: 201 with an absolute Location and its digest", async () => {
    const repo = uniqueRepo("manifests");
    const img = await anImage().randomLayers(2).build();
    for (const b of img.blobs) await registry.pushBlob(repo, b.bytes);
    const res = await registry.putManifest(repo, "v1", img.bytes, img.mediaType);
    await expectStatus(res, 201);
    expect(res.headers.get("Location")).toBe(`http://registry.test/v2/${repo}/manifests/${img.digest}`);
    expect(res.headers.get("Docker-Content-Digest")).toBe(img.digest);
    expect(res.headers.get("OCI-Subject")).toBeNull();
    await expectServed(repo, "v1", img);
    await expectServed(repo, img.digest, img);
  });

  it("stores a manifest by digest without creating a tag", async () => {
    const repo = uniqueRepo("manifests");
    const img = await anImage().randomLayers(1).pushTo(worker, repo);
    await expectServed(repo, img.digest, img);
    expect(await (await registry.tags(repo)).json()).toEqual({ name: repo, tags: [] });
  });

  it("accepts all four manifest and index media types and serves each with its own Content-Type", async () => {
    const repo = uniqueRepo("manifests");
    const oci = await anImage().randomLayers(1).pushTo(worker, repo, "oci");
    const docker = await anImage().asDocker().randomLayers(1).pushTo(worker, repo, "docker");
    const ociIndex = await anIndex()
      .of(await anImage().randomLayers(1).build(), await anImage().platforms(["linux/arm64"]).build())
      .pushTo(worker, repo, "oci-index");
    const dockerList = await anIndex()
      .asDocker()
      .of(await anImage().asDocker().randomLayers(1).build())
      .pushTo(worker, repo, "docker-list");
    expect([oci, docker, ociIndex, dockerList].map((m) => m.mediaType)).toEqual([
      MediaType.OciManifest,
      MediaType.DockerManifest,
      MediaType.OciIndex,
      MediaType.DockerManifestList,
    ]);
    for (const [tag, m] of [
      ["oci", oci],
      ["docker", docker],
      ["oci-index", ociIndex],
      ["docker-list", dockerList],
    ] as const) {
      await expectServed(repo, tag, m);
    }
  });

  it("accepts an OCI manifest without a mediaType field, typed by its Content-Type", async () => {
    const repo = uniqueRepo("manifests");
    const img = await anImage().randomLayers(1).build();
    for (const b of img.blobs) await registry.pushBlob(repo, b.bytes);
    const json = JSON.parse(new TextDecoder().decode(img.bytes)) as Record<string, unknown>;
    delete json.mediaType;
    const bytes = utf8(JSON.stringify(json));
    const { digest } = await registry.pushManifest(repo, "untyped", bytes, MediaType.OciManifest);
    const res = await registry.manifest(repo, digest);
    expect(res.headers.get("Content-Type")).toBe(MediaType.OciManifest);
    expect(await bytesOf(res)).toEqual(bytes);
  });

  it("accepts a 64-hex tag, as the reference builder tags manifests with their digest", async () => {
    const repo = uniqueRepo("manifests");
    const img = await anImage().randomLayers(1).build();
    const tag = hexOf(img.digest);
    for (const b of img.blobs) await registry.pushBlob(repo, b.bytes);
    await registry.pushManifest(repo, tag, img.bytes, img.mediaType);
    await expectServed(repo, tag, img);
    expect(await (await registry.tags(repo)).json()).toEqual({ name: repo, tags: [tag] });
  });

  it("moves a tag to the manifest pushed last", async () => {
    const repo = uniqueRepo("manifests");
    await anImage().randomLayers(1).pushTo(worker, repo, "latest");
    const newer = await anImage().randomLayers(1).pushTo(worker, repo, "latest");
    await expectServed(repo, "latest", newer);
  });

  it("refuses a manifest whose layer was never pushed with 404 MANIFEST_BLOB_UNKNOWN and stores nothing", async () => {
    const repo = uniqueRepo("manifests");
    const img = await anImage().randomLayers(2).build();
    const [config, present] = img.blobs;
    await registry.pushBlob(repo, config!.bytes);
    await registry.pushBlob(repo, present!.bytes);
    const res = await registry.putManifest(repo, "v1", img.bytes, img.mediaType);
    const err = await expectOciError(res, 404, "MANIFEST_BLOB_UNKNOWN");
    expect(err.detail).toEqual({ missing: [img.blobs[2]!.descriptor.digest] });
    await expectOciError(await registry.manifest(repo, "v1"), 404, "MANIFEST_UNKNOWN");
    await expectOciError(await registry.manifest(repo, img.digest), 404, "MANIFEST_UNKNOWN");
  });

  it("refuses a manifest whose config was never pushed with MANIFEST_BLOB_UNKNOWN", async () => {
    const repo = uniqueRepo("manifests");
    const img = await anImage().randomLayers(1).build();
    await registry.pushBlob(repo, img.blobs[1]!.bytes);
    await expectOciError(
      await registry.putManifest(repo, "v1", img.bytes, img.mediaType),
      404,
      "MANIFEST_BLOB_UNKNOWN",
    );
  });

  it("refuses a manifest whose blobs live only in another repository", async () => {
    const img = await anImage().randomLayers(1).build();
    const elsewhere = uniqueRepo("manifests");
    for (const b of img.blobs) await registry.pushBlob(elsewhere, b.bytes);
    await expectOciError(
      await registry.putManifest(uniqueRepo("manifests"), "v1", img.bytes, img.mediaType),
      404,
      "MANIFEST_BLOB_UNKNOWN",
    );
  });

  it("refuses an index whose child manifest was never pushed with MANIFEST_BLOB_UNKNOWN", async () => {
    const repo = uniqueRepo("manifests");
    const pushed = await anImage().randomLayers(1).pushTo(worker, repo);
    const missing = await anImage().randomLayers(1).build();
    const index = await anIndex().of(pushed, missing).build();
    const res = await registry.putManifest(repo, "multi", index.bytes, index.mediaType);
    const err = await expectOciError(res, 404, "MANIFEST_BLOB_UNKNOWN");
    expect(err.detail).toEqual({ missing: [missing.digest] });
  });

  it("accepts a manifest whose subject does not exist and answers with OCI-Subject", async () => {
    const repo = uniqueRepo("manifests");
    const absent = await anImage().randomLayers(1).build();
    const sbom = await anImage()
      .artifactType("application/vnd.example.sbom.v1+json")
      .subject(absent.descriptor)
      .build();
    for (const b of sbom.blobs) await registry.pushBlob(repo, b.bytes);
    const res = await registry.putManifest(repo, sbom.digest, sbom.bytes, sbom.mediaType);
    await expectStatus(res, 201);
    expect(res.headers.get("OCI-Subject")).toBe(absent.digest);
    await expectServed(repo, sbom.digest, sbom);
  });

  it("answers OCI-Subject for an index with a subject too", async () => {
    const repo = uniqueRepo("manifests");
    const subject = await anImage().randomLayers(1).pushTo(worker, repo, "app");
    const child = await anImage().randomLayers(1).pushTo(worker, repo);
    const index = await anIndex()
      .of(child)
      .artifactType("application/vnd.example.bundle")
      .subject(subject.descriptor)
      .build();
    const res = await registry.putManifest(repo, index.digest, index.bytes, index.mediaType);
    await expectStatus(res, 201);
    expect(res.headers.get("OCI-Subject")).toBe(subject.digest);
  });

  it("refuses a digest reference that does not match the body with 400 DIGEST_INVALID and stores nothing", async () => {
    const repo = uniqueRepo("manifests");
    const img = await anImage().randomLayers(1).build();
    for (const b of img.blobs) await registry.pushBlob(repo, b.bytes);
    const wrong = await digestOf(randomBytes(32));
    await expectOciError(await registry.putManifest(repo, wrong, img.bytes, img.mediaType), 400, "DIGEST_INVALID");
    await expectOciError(await registry.manifest(repo, wrong), 404, "MANIFEST_UNKNOWN");
    await expectOciError(await registry.manifest(repo, img.digest), 404, "MANIFEST_UNKNOWN");
  });
});

describe("manifest validation", () => {
  const repo = uniqueRepo("manifests");
  const json = (value: unknown) => utf8(JSON.stringify(value));
  const config = { mediaType: MediaType.OciConfig, digest: `sha256:${"a".repeat(64)}`, size: 2 };
  const cases: [string, Uint8Array, string][] = [
    ["malformed JSON", utf8("{ not json"), MediaType.OciManifest],
    ["an empty body", new Uint8Array(0), MediaType.OciManifest],
    ["a JSON array", utf8("[]"), MediaType.OciManifest],
    ["invalid UTF-8", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), MediaType.OciManifest],
    ["an unknown media type", json({ schemaVersion: 2, config, layers: [] }), "application/vnd.example.thing"],
    [
      "a body mediaType that contradicts Content-Type",
      json({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }),
      MediaType.OciManifest,
    ],
    ["a non-string mediaType", json({ schemaVersion: 2, mediaType: 7, manifests: [] }), MediaType.OciIndex],
    ["schemaVersion 1", json({ schemaVersion: 1, mediaType: MediaType.OciIndex, manifests: [] }), MediaType.OciIndex],
    [
      "a manifest without layers",
      json({ schemaVersion: 2, mediaType: MediaType.OciManifest, config }),
      MediaType.OciManifest,
    ],
    [
      "a descriptor with a malformed digest",
      json({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { ...config, digest: "sha256:xyz" },
        layers: [],
      }),
      MediaType.OciManifest,
    ],
    [
      "a descriptor with a negative size",
      json({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: { ...config, size: -1 }, layers: [] }),
      MediaType.OciManifest,
    ],
    [
      "an index whose manifests is not an array",
      json({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: {} }),
      MediaType.OciIndex,
    ],
  ];

  for (const [what, bytes, contentType] of cases) {
    it(`refuses ${what} with 400 MANIFEST_INVALID and stores nothing`, async () => {
      await expectOciError(await registry.putManifest(repo, "bad", bytes, contentType), 400, "MANIFEST_INVALID");
      await expectOciError(await registry.manifest(repo, "bad"), 404, "MANIFEST_UNKNOWN");
    });
  }
});

describe("GET and HEAD /v2/<name>/manifests/<reference>", () => {
  it("answers HEAD by tag and by digest with the headers and no body", async () => {
    const repo = uniqueRepo("manifests");
    const img = await anImage().randomLayers(1).pushTo(worker, repo, "v1");
    for (const ref of ["v1", img.digest]) {
      const res = await registry.manifest(repo, ref, { method: "HEAD", headers: { Accept: MediaType.OciManifest } });
      expect(res.status).toBe(200);
      expect(res.headers.get("Content-Type")).toBe(MediaType.OciManifest);
      expect(res.headers.get("Docker-Content-Digest")).toBe(img.digest);
      expect(res.headers.get("ETag")).toBe(`"${img.digest}"`);
      expect(res.headers.get("Content-Length")).toBe(String(img.bytes.byteLength));
      expect(await res.text()).toBe("");
    }
  });

  it("marks a manifest by digest immutable and one by tag revalidated", async () => {
    const repo = uniqueRepo("manifests");
    const img = await anImage().randomLayers(1).pushTo(worker, repo, "v1");
    expect((await registry.manifest(repo, img.digest)).headers.get("Cache-Control")).toBe(IMMUTABLE);
    expect((await registry.manifest(repo, "v1")).headers.get("Cache-Control")).toBe("no-cache");
  });

  it("answers If-None-Match with the manifest's ETag with 304 and no body", async () => {
    const repo = uniqueRepo("manifests");
    const img = await anImage().randomLayers(1).pushTo(worker, repo, "v1");
    const res = await registry.manifest(repo, "v1", { headers: { "If-None-Match": `"${img.digest}"` } });
    expect(res.status).toBe(304);
    expect(res.headers.get("Docker-Content-Digest")).toBe(img.digest);
    expect(await res.text()).toBe("");
    const stale = await registry.manifest(repo, "v1", {
      headers: { "If-None-Match": `"${await digestOf(randomBytes(8))}"` },
    });
    expect(stale.status).toBe(200);
  });

  it("serves an index as pushed to a client that accepts indexes", async () => {
    const repo = uniqueRepo("manifests");
    const amd64 = await anImage().randomLayers(1).build();
    const arm64 = await anImage().platforms(["linux/arm64"]).randomLayers(1).build();
    const index = await anIndex().of(amd64, arm64).pushTo(worker, repo, "multi");
    const res = await registry.manifest(repo, "multi", {
      headers: { Accept: `${MediaType.OciManifest}, ${MediaType.OciIndex}` },
    });
    expect(res.headers.get("Content-Type")).toBe(MediaType.OciIndex);
    expect(await bytesOf(res)).toEqual(index.bytes);
  });

  it("serves the linux/amd64 manifest of an index to a client that accepts only image manifests", async () => {
    const repo = uniqueRepo("manifests");
    const arm64 = await anImage().platforms(["linux/arm64"]).randomLayers(1).build();
    const amd64 = await anImage().randomLayers(1).build();
    await anIndex().of(arm64, amd64).pushTo(worker, repo, "multi");
    const res = await registry.manifest(repo, "multi", { headers: { Accept: MediaType.OciManifest } });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe(MediaType.OciManifest);
    expect(res.headers.get("Docker-Content-Digest")).toBe(amd64.digest);
    expect(await bytesOf(res)).toEqual(amd64.bytes);
  });

  it("is 404 MANIFEST_UNKNOWN for an unknown tag or digest", async () => {
    const repo = uniqueRepo("manifests");
    await anImage().randomLayers(1).pushTo(worker, repo, "v1");
    await expectOciError(await registry.manifest(repo, "v2"), 404, "MANIFEST_UNKNOWN");
    await expectOciError(await registry.manifest(repo, await digestOf(randomBytes(8))), 404, "MANIFEST_UNKNOWN");
    const head = await registry.manifest(repo, "v2", { method: "HEAD" });
    expect(head.status).toBe(404);
  });

  it("does not serve a manifest through a repository it was never pushed to", async () => {
    const img = await anImage().randomLayers(1).pushTo(worker, uniqueRepo("manifests"), "v1");
    await expectOciError(await registry.manifest(uniqueRepo("manifests"), img.digest), 404, "MANIFEST_UNKNOWN");
  });
});

describe("DELETE /v2/<name>/manifests/<reference>", () => {
  it("deletes by digest: the manifest and every tag that points at it", async () => {
    const repo = uniqueRepo("manifests");
    const img = await anImage().randomLayers(1).pushTo(worker, repo, "v1");
    await registry.pushManifest(repo, "stable", img.bytes, img.mediaType);
    const other = await anImage().randomLayers(1).pushTo(worker, repo, "other");
    const res = await registry.manifest(repo, img.digest, { method: "DELETE" });
    expect(res.status).toBe(202);
    await expectOciError(await registry.manifest(repo, img.digest), 404, "MANIFEST_UNKNOWN");
    await expectOciError(await registry.manifest(repo, "v1"), 404, "MANIFEST_UNKNOWN");
    await expectOciError(await registry.manifest(repo, "stable"), 404, "MANIFEST_UNKNOWN");
    expect(await (await registry.tags(repo)).json()).toEqual({ name: repo, tags: ["other"] });
    await expectServed(repo, "other", other);
    // Its blobs are not deleted with it: other manifests may share them.
    expect((await registry.blob(repo, img.blobs[1]!.descriptor.digest, { method: "HEAD" })).status).toBe(200);
  });

  it("deletes by tag: only the tag, the manifest stays reachable by digest", async () => {
    const repo = uniqueRepo("manifests");
    const img = await anImage().randomLayers(1).pushTo(worker, repo, "v1");
    await registry.pushManifest(repo, "v1.0", img.bytes, img.mediaType);
    const res = await registry.manifest(repo, "v1", { method: "DELETE" });
    expect(res.status).toBe(202);
    await expectOciError(await registry.manifest(repo, "v1"), 404, "MANIFEST_UNKNOWN");
    await expectServed(repo, img.digest, img);
    await expectServed(repo, "v1.0", img);
    expect(await (await registry.tags(repo)).json()).toEqual({ name: repo, tags: ["v1.0"] });
  });

  it("is 404 MANIFEST_UNKNOWN for an unknown tag or digest", async () => {
    const repo = uniqueRepo("manifests");
    await anImage().randomLayers(1).pushTo(worker, repo, "v1");
    await expectOciError(await registry.manifest(repo, "nope", { method: "DELETE" }), 404, "MANIFEST_UNKNOWN");
    const unknown = await digestOf(randomBytes(8));
    await expectOciError(await registry.manifest(repo, unknown, { method: "DELETE" }), 404, "MANIFEST_UNKNOWN");
  });
});
