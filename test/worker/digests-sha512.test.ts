/**
 * sha512 digests (registered in the OCI image spec) for blobs and manifests: every way a blob
 * arrives (monolithic with and without a length, sessions of one or several chunks, the whole blob
 * in the closing PUT, a mount) is verified against sha512 and kept under that digest, a wrong body
 * is 400 DIGEST_INVALID with nothing kept, and a manifest pushed by its sha512 digest is stored,
 * served and collected under it.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { digestWith, hexOf, type Digest } from "../../core/oci/digest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { collect } from "../../worker/gc/collector.ts";
import { DEFAULTS } from "../../worker/config.ts";
import { keys } from "../../worker/storage/keys.ts";
import { anImage } from "../helpers/images/builder.ts";
import type { BuiltImage } from "../helpers/images/types.ts";
import { digestOf, randomBytes, streamOf, utf8 } from "./helpers/bytes.ts";
import {
  bytesOf,
  call,
  expectOciError,
  expectStatus,
  registry,
  uniqueRepo,
  withParams,
  worker,
} from "./helpers/registry.ts";
import { blobObjects, isLinked, uploadLeftovers } from "./helpers/storage.ts";

const sha512 = (bytes: Uint8Array): Promise<Digest> => digestWith("sha512", bytes);

/** The sha512 of nothing, as published with the algorithm. */
const EMPTY_SHA512: Digest =
  "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";

/** Checks a 201 for `digest`, then that GET and HEAD by that digest serve exactly `bytes`. */
async function expectStoredAs(res: Response, repo: string, digest: Digest, bytes: Uint8Array): Promise<void> {
  await expectStatus(res, 201);
  expect(res.headers.get("Location")).toBe(`http://registry.test/v2/${repo}/blobs/${digest}`);
  expect(res.headers.get("Docker-Content-Digest")).toBe(digest);
  const get = await registry.blob(repo, digest);
  await expectStatus(get, 200);
  expect(get.headers.get("Docker-Content-Digest")).toBe(digest);
  expect(get.headers.get("Content-Length")).toBe(String(bytes.byteLength));
  expect(await bytesOf(get)).toEqual(bytes);
  expect(await blobObjects(digest)).toHaveLength(1);
  // Kept under the digest the client named only: the same bytes are not a sha256 blob here.
  expect(await isLinked(repo, await digestOf(bytes))).toBe(false);
}

/** Nothing of `bytes` is linked or recorded, under the claimed digest or under either of its own. */
async function expectNothingKept(repo: string, claimed: Digest, bytes: Uint8Array): Promise<void> {
  for (const d of [claimed, await sha512(bytes), await digestOf(bytes)]) {
    expect(await blobObjects(d), d).toEqual([]);
    expect(await isLinked(repo, d), d).toBe(false);
  }
  await expectOciError(await registry.blob(repo, claimed), 404, "BLOB_UNKNOWN");
}

/** Pushes a blob by its sha512 digest, monolithically. */
async function pushSha512(repo: string, bytes: Uint8Array): Promise<Digest> {
  const digest = await sha512(bytes);
  const res = await call(`/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: "POST", body: bytes });
  await expectStatus(res, 201);
  expect(res.headers.get("Docker-Content-Digest")).toBe(digest);
  return digest;
}

describe("sha512 blob uploads", () => {
  it("stores a monolithic upload with a Content-Length under its sha512 digest", async () => {
    const repo = uniqueRepo("sha512");
    const bytes = randomBytes(40_000);
    const digest = await sha512(bytes);
    expect(hexOf(digest)).toHaveLength(128);
    const res = await call(`/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream" },
      body: bytes,
    });
    await expectStoredAs(res, repo, digest, bytes);
  });

  it("stores a monolithic upload streamed without a Content-Length", async () => {
    const repo = uniqueRepo("sha512");
    const bytes = randomBytes(300_000);
    const digest = await sha512(bytes);
    const res = await call(`/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: "POST", body: streamOf(bytes) });
    await expectStoredAs(res, repo, digest, bytes);
  });

  it("refuses a monolithic upload whose bytes do not match its sha512 with 400 DIGEST_INVALID and keeps nothing", async () => {
    const repo = uniqueRepo("sha512");
    const bytes = randomBytes(5000);
    const claimed = await sha512(randomBytes(5000));
    const res = await call(`/v2/${repo}/blobs/uploads/?digest=${claimed}`, { method: "POST", body: bytes });
    const error = await expectOciError(res, 400, "DIGEST_INVALID");
    expect(error.detail).toEqual({ expected: claimed, computed: await sha512(bytes) });
    await expectNothingKept(repo, claimed, bytes);
  });

  it("refuses a streamed monolithic upload whose bytes do not match its sha512 and keeps nothing", async () => {
    const repo = uniqueRepo("sha512");
    const bytes = randomBytes(200_000);
    const claimed = await sha512(randomBytes(16));
    const res = await call(`/v2/${repo}/blobs/uploads/?digest=${claimed}`, { method: "POST", body: streamOf(bytes) });
    await expectOciError(res, 400, "DIGEST_INVALID");
    await expectNothingKept(repo, claimed, bytes);
  });

  it("refuses a malformed sha512 digest (127 hex digits) with 400 DIGEST_INVALID", async () => {
    const repo = uniqueRepo("sha512");
    const short = `sha512:${"ab".repeat(63)}f`;
    const res = await call(`/v2/${repo}/blobs/uploads/?digest=${short}`, { method: "POST", body: "x" });
    const error = await expectOciError(res, 400, "DIGEST_INVALID");
    expect(error.message).toBe("invalid digest");
  });

  it("closes a session of one streamed PATCH with ?digest=sha512 (read back once through SHA-512)", async () => {
    const repo = uniqueRepo("sha512");
    const bytes = randomBytes(150_000);
    const digest = await sha512(bytes);
    const { location, uuid } = await registry.openUpload(repo);
    await expectStatus(await call(location, { method: "PATCH", body: streamOf(bytes) }), 202);
    const put = await call(withParams(location, { digest }), { method: "PUT" });
    await expectStoredAs(put, repo, digest, bytes);
    expect(await uploadLeftovers(uuid)).toHaveLength(1);
    expect(await env.BLOBS.head(keys.upload(uuid))).toBeNull();
  });

  it("closes a session of several chunks, the last in the PUT body, with ?digest=sha512", async () => {
    const repo = uniqueRepo("sha512");
    const bytes = randomBytes(30_000);
    const digest = await sha512(bytes);
    const { location } = await registry.openUpload(repo);
    for (const [start, end] of [
      [0, 9999],
      [10_000, 19_999],
    ] as const) {
      const res = await call(location, {
        method: "PATCH",
        headers: { "Content-Range": `${start}-${end}` },
        body: bytes.slice(start, end + 1),
      });
      await expectStatus(res, 202);
    }
    const put = await call(withParams(location, { digest }), { method: "PUT", body: bytes.slice(20_000) });
    await expectStoredAs(put, repo, digest, bytes);
  });

  it("closes a fresh session with the whole blob in the PUT body, hashed as it streams", async () => {
    const repo = uniqueRepo("sha512");
    const bytes = randomBytes(70_000);
    const digest = await sha512(bytes);
    const { location, uuid } = await registry.openUpload(repo);
    const put = await call(withParams(location, { digest }), { method: "PUT", body: bytes });
    await expectStoredAs(put, repo, digest, bytes);
    expect(await uploadLeftovers(uuid)).toEqual([]);
  });

  it("closes an empty session as the empty blob's sha512", async () => {
    const repo = uniqueRepo("sha512");
    expect(await sha512(new Uint8Array(0))).toBe(EMPTY_SHA512);
    const { location } = await registry.openUpload(repo);
    const put = await call(withParams(location, { digest: EMPTY_SHA512 }), { method: "PUT" });
    await expectStoredAs(put, repo, EMPTY_SHA512, new Uint8Array(0));
  });

  it("refuses a session whose bytes do not match its sha512: 400 DIGEST_INVALID, nothing kept, session over", async () => {
    const repo = uniqueRepo("sha512");
    const bytes = randomBytes(20_000);
    const claimed = await sha512(randomBytes(20_000));
    const { location, uuid } = await registry.openUpload(repo);
    await expectStatus(await call(location, { method: "PATCH", body: bytes.slice(0, 12_000) }), 202);
    await expectStatus(await call(location, { method: "PATCH", body: bytes.slice(12_000) }), 202);
    const put = await call(withParams(location, { digest: claimed }), { method: "PUT" });
    const error = await expectOciError(put, 400, "DIGEST_INVALID");
    expect(error.detail).toEqual({ expected: claimed, computed: await sha512(bytes) });
    await expectNothingKept(repo, claimed, bytes);
    expect(await uploadLeftovers(uuid)).toEqual([]);
    await expectOciError(await call(location), 404, "BLOB_UPLOAD_UNKNOWN");
  });

  it("refuses a session closed with the sha512 of other bytes even though its sha256 was hashed on the way", async () => {
    const repo = uniqueRepo("sha512");
    const bytes = randomBytes(9000);
    const claimed = await sha512(utf8("other bytes"));
    const { location, uuid } = await registry.openUpload(repo);
    await expectStatus(await call(location, { method: "PATCH", body: bytes }), 202);
    await expectOciError(
      await call(withParams(location, { digest: claimed }), { method: "PUT" }),
      400,
      "DIGEST_INVALID",
    );
    await expectNothingKept(repo, claimed, bytes);
    expect(await uploadLeftovers(uuid)).toEqual([]);
  });

  it("refuses a whole-blob PUT whose bytes do not match its sha512 and keeps nothing", async () => {
    const repo = uniqueRepo("sha512");
    const bytes = randomBytes(8000);
    const claimed = await sha512(randomBytes(8000));
    const { location, uuid } = await registry.openUpload(repo);
    const put = await call(withParams(location, { digest: claimed }), { method: "PUT", body: bytes });
    await expectOciError(put, 400, "DIGEST_INVALID");
    await expectNothingKept(repo, claimed, bytes);
    expect(await uploadLeftovers(uuid)).toEqual([]);
  });
});

describe("sha512 blob reads, mounts and deletes", () => {
  it("serves GET, HEAD and a Range by sha512 digest, and 404 BLOB_UNKNOWN for one never pushed", async () => {
    const repo = uniqueRepo("sha512");
    const bytes = randomBytes(10_000);
    const digest = await pushSha512(repo, bytes);
    const head = await registry.blob(repo, digest, { method: "HEAD" });
    await expectStatus(head, 200);
    expect(head.headers.get("Content-Length")).toBe("10000");
    expect(head.headers.get("Docker-Content-Digest")).toBe(digest);
    expect(head.headers.get("ETag")).toBe(`"${digest}"`);
    const ranged = await registry.blob(repo, digest, { headers: { Range: "bytes=100-199" } });
    await expectStatus(ranged, 206);
    expect(await bytesOf(ranged)).toEqual(bytes.slice(100, 200));
    const unknown = await sha512(randomBytes(32));
    await expectOciError(await registry.blob(repo, unknown), 404, "BLOB_UNKNOWN");
    expect((await registry.blob(repo, unknown, { method: "HEAD" })).status).toBe(404);
  });

  it("mounts a sha512 blob from another repository with 201, without storing it again", async () => {
    const from = uniqueRepo("sha512");
    const to = uniqueRepo("sha512");
    const bytes = randomBytes(12_000);
    const digest = await pushSha512(from, bytes);
    const res = await call(`/v2/${to}/blobs/uploads/?mount=${digest}&from=${from}`, { method: "POST" });
    await expectStoredAs(res, to, digest, bytes);
    expect(await blobObjects(digest)).toHaveLength(1);
  });

  it("deletes a sha512 blob from a repository", async () => {
    const repo = uniqueRepo("sha512");
    const digest = await pushSha512(repo, randomBytes(100));
    expect((await registry.blob(repo, digest, { method: "DELETE" })).status).toBe(202);
    await expectOciError(await registry.blob(repo, digest), 404, "BLOB_UNKNOWN");
  });
});

/** An OCI image manifest over sha512 config and layer blobs, whose blobs are pushed to `repo`. */
async function sha512Image(repo: string): Promise<BuiltImage> {
  // The builder gives each image a config of its own, so that two images share no blob.
  const img = await anImage().digestAlgorithm("sha512").randomLayers(1, 3000).build();
  for (const b of img.blobs) expect(await pushSha512(repo, b.bytes)).toBe(b.digest);
  return img;
}

describe("sha512 manifests", () => {
  it("stores a manifest pushed by its sha512 digest under it and serves it back byte for byte", async () => {
    const repo = uniqueRepo("sha512");
    const img = await sha512Image(repo);
    const digest = await sha512(img.bytes);
    const put = await registry.putManifest(repo, `${digest}?tag=v1`, img.bytes, MediaType.OciManifest);
    await expectStatus(put, 201);
    expect(put.headers.get("Docker-Content-Digest")).toBe(digest);
    expect(put.headers.get("Location")).toBe(`http://registry.test/v2/${repo}/manifests/${digest}`);
    expect(put.headers.get("OCI-Tag")).toBe("v1");

    for (const reference of [digest, "v1"]) {
      const get = await registry.manifest(repo, reference, { headers: { Accept: MediaType.OciManifest } });
      await expectStatus(get, 200);
      expect(get.headers.get("Docker-Content-Digest")).toBe(digest);
      expect(get.headers.get("Content-Type")).toBe(MediaType.OciManifest);
      const back = await bytesOf(get);
      expect(back).toEqual(img.bytes);
      expect(await sha512(back)).toBe(digest);
    }
    const head = await registry.manifest(repo, digest, { method: "HEAD" });
    await expectStatus(head, 200);
    expect(head.headers.get("Content-Length")).toBe(String(img.bytes.byteLength));
    // Stored under the digest it was pushed by, not also under its sha256.
    expect(await env.BLOBS.head(keys.manifest(repo, digest))).not.toBeNull();
    await expectOciError(await registry.manifest(repo, await digestOf(img.bytes)), 404, "MANIFEST_UNKNOWN");
    // Every blob it references pulls back by its sha512.
    for (const b of img.blobs) expect(await bytesOf(await registry.blob(repo, b.digest))).toEqual(b.bytes);
  });

  it("lists a referrer of a manifest pushed by sha512 under that subject", async () => {
    const repo = uniqueRepo("sha512");
    const img = await sha512Image(repo);
    const subject = { mediaType: MediaType.OciManifest, digest: await sha512(img.bytes), size: img.bytes.byteLength };
    await expectStatus(await registry.putManifest(repo, subject.digest, img.bytes, MediaType.OciManifest), 201);
    const sbom = await anImage().artifactType("application/vnd.example.sbom").subject(subject).pushTo(worker, repo);
    const res = await call(`/v2/${repo}/referrers/${subject.digest}`);
    await expectStatus(res, 200);
    const index = (await res.json()) as { manifests: { digest: string; artifactType?: string }[] };
    expect(index.manifests.map((m) => [m.digest, m.artifactType])).toEqual([
      [sbom.digest, "application/vnd.example.sbom"],
    ]);
  });

  it("names a manifest over sha512 blobs pushed by tag by its sha256, as clients expect", async () => {
    const repo = uniqueRepo("sha512");
    const img = await sha512Image(repo);
    const { digest } = await registry.pushManifest(repo, "latest", img.bytes, MediaType.OciManifest);
    expect(digest).toBe(await digestOf(img.bytes));
    const get = await registry.manifest(repo, "latest");
    expect(get.headers.get("Docker-Content-Digest")).toBe(digest);
    expect(await bytesOf(get)).toEqual(img.bytes);
  });

  it("refuses a manifest whose bytes do not match its sha512 digest with 400 DIGEST_INVALID and keeps nothing", async () => {
    const repo = uniqueRepo("sha512");
    const img = await sha512Image(repo);
    const claimed = await sha512(utf8("some other manifest"));
    const put = await registry.putManifest(repo, claimed, img.bytes, MediaType.OciManifest);
    const error = await expectOciError(put, 400, "DIGEST_INVALID");
    expect(error.detail).toEqual({ reference: claimed, computed: await sha512(img.bytes) });
    await expectOciError(await registry.manifest(repo, claimed), 404, "MANIFEST_UNKNOWN");
    await expectOciError(await registry.manifest(repo, await sha512(img.bytes)), 404, "MANIFEST_UNKNOWN");
    expect(await env.BLOBS.head(keys.manifest(repo, claimed))).toBeNull();
  });

  it("refuses a manifest that references a sha512 blob the repository lacks with 404 MANIFEST_BLOB_UNKNOWN", async () => {
    const repo = uniqueRepo("sha512");
    const config = utf8("{}");
    const missing = await sha512(randomBytes(64));
    const manifest = utf8(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: await pushSha512(repo, config), size: config.byteLength },
        layers: [{ mediaType: MediaType.OciLayerGzip, digest: missing, size: 64 }],
      }),
    );
    const put = await registry.putManifest(repo, await sha512(manifest), manifest, MediaType.OciManifest);
    const error = await expectOciError(put, 404, "MANIFEST_BLOB_UNKNOWN");
    expect(error.detail).toEqual({ missing: [missing] });
  });

  it("keeps a tagged sha512 image through a collection and frees an untagged one", async () => {
    const repo = uniqueRepo("sha512");
    const kept = await sha512Image(repo);
    const keptDigest = await sha512(kept.bytes);
    await expectStatus(
      await registry.putManifest(repo, `${keptDigest}?tag=kept`, kept.bytes, MediaType.OciManifest),
      201,
    );
    const dropped = await sha512Image(repo);
    const droppedDigest = await sha512(dropped.bytes);
    await expectStatus(await registry.putManifest(repo, droppedDigest, dropped.bytes, MediaType.OciManifest), 201);
    // The collection's cutoff is exclusive: let the clock pass what was just written.
    await new Promise((resolve) => setTimeout(resolve, 5));

    const report = await collect(env.BLOBS, {
      graceMs: 0,
      uploadTtlMs: DEFAULTS.uploadTtlSeconds * 1000,
      derivedTtlMs: DEFAULTS.gcDerivedTtlSeconds * 1000,
      maxOperations: 100_000,
    });

    expect(report.complete).toBe(true);
    expect(report.skipped).toEqual([]);
    expect(await bytesOf(await registry.manifest(repo, keptDigest))).toEqual(kept.bytes);
    for (const b of kept.blobs) expect(await bytesOf(await registry.blob(repo, b.digest))).toEqual(b.bytes);
    await expectOciError(await registry.manifest(repo, droppedDigest), 404, "MANIFEST_UNKNOWN");
    for (const b of dropped.blobs) {
      await expectOciError(await registry.blob(repo, b.digest), 404, "BLOB_UNKNOWN");
      expect(await blobObjects(b.digest)).toEqual([]);
    }
  });
});
