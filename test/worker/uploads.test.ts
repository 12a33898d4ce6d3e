import { describe, expect, it } from "vitest";
import { hexOf } from "../../core/oci/digest.ts";
import { digestOf, randomBytes, streamOf } from "./helpers/bytes.ts";
import {
  bytesOf,
  call,
  expectOciError,
  expectStatus,
  registry,
  uniqueRepo,
  uploadOf,
  withParams,
} from "./helpers/registry.ts";
import { blobObjects, isLinked, uploadLeftovers } from "./helpers/storage.ts";

/** Checks the 201 that closes an upload and that the blob then reads back as `bytes`. */
async function expectBlobCreated(res: Response, repo: string, bytes: Uint8Array): Promise<void> {
  const digest = await digestOf(bytes);
  await expectStatus(res, 201);
  expect(res.headers.get("Location")).toBe(`http://registry.test/v2/${repo}/blobs/${digest}`);
  expect(res.headers.get("Docker-Content-Digest")).toBe(digest);
  const get = await registry.blob(repo, digest);
  expect(get.status).toBe(200);
  expect(await bytesOf(get)).toEqual(bytes);
}

describe("POST /v2/<name>/blobs/uploads/", () => {
  it("stores a monolithic upload (?digest= with a body) and answers 201 with an absolute Location", async () => {
    const repo = uniqueRepo("uploads");
    const bytes = randomBytes(10_000);
    const res = await call(`/v2/${repo}/blobs/uploads/?digest=${await digestOf(bytes)}`, {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream" },
      body: bytes,
    });
    await expectBlobCreated(res, repo, bytes);
  });

  it("stores a monolithic upload streamed without a Content-Length", async () => {
    const repo = uniqueRepo("uploads");
    const bytes = randomBytes(300_000);
    const res = await call(`/v2/${repo}/blobs/uploads/?digest=${await digestOf(bytes)}`, {
      method: "POST",
      body: streamOf(bytes),
    });
    await expectBlobCreated(res, repo, bytes);
  });

  it("opens a session: 202 with an absolute Location, the UUID, Range 0-0 and the chunk limit", async () => {
    const repo = uniqueRepo("uploads");
    const res = await call(`/v2/${repo}/blobs/uploads/`, { method: "POST" });
    expect(res.status).toBe(202);
    const { location, uuid } = uploadOf(res);
    expect(location).toBe(`http://registry.test/v2/${repo}/blobs/uploads/${uuid}`);
    expect(res.headers.get("Range")).toBe("0-0");
    expect(Number(res.headers.get("OCI-Chunk-Max-Length"))).toBeGreaterThanOrEqual(5 * 1024 * 1024);
    expect(await res.text()).toBe("");
  });

  it("accepts the reference builder's flow: POST ?digest=<bare hex> with no body, then a streamed PUT", async () => {
    const repo = uniqueRepo("uploads");
    const bytes = randomBytes(200_000);
    const digest = await digestOf(bytes);
    const post = await call(`/v2/${repo}/blobs/uploads/?digest=${hexOf(digest)}`, { method: "POST" });
    expect(post.status).toBe(202);
    const { location } = uploadOf(post);
    expect(location.startsWith("http://registry.test/")).toBe(true);
    const put = await call(withParams(location, { digest }), {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream" },
      body: streamOf(bytes),
    });
    await expectBlobCreated(put, repo, bytes);
  });

  it("takes the digest the reference builder appends to a Location without a query (`<Location>&digest=`)", async () => {
    const repo = uniqueRepo("uploads");
    const bytes = randomBytes(50_000);
    const digest = await digestOf(bytes);
    const post = await call(`/v2/${repo}/blobs/uploads/?digest=${hexOf(digest)}`, { method: "POST" });
    const { location } = uploadOf(post);
    expect(location).not.toContain("?");
    const put = await call(`${location}&digest=${digest}`, {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream" },
      body: streamOf(bytes),
    });
    await expectBlobCreated(put, repo, bytes);
  });
});

describe("upload sessions", () => {
  it("takes a streamed PATCH without Content-Length, then PUT ?digest= with no body", async () => {
    const repo = uniqueRepo("uploads");
    const bytes = randomBytes(150_000);
    const { location, uuid } = await registry.openUpload(repo);
    const patch = await call(location, { method: "PATCH", body: streamOf(bytes.subarray(0, 100_000)) });
    expect(patch.status).toBe(202);
    expect(patch.headers.get("Range")).toBe("0-99999");
    expect(patch.headers.get("Docker-Upload-UUID")).toBe(uuid);
    expect(patch.headers.get("Location")).toBe(location);
    const second = await call(location, { method: "PATCH", body: streamOf(bytes.subarray(100_000)) });
    expect(second.status).toBe(202);
    expect(second.headers.get("Range")).toBe("0-149999");
    const put = await call(withParams(location, { digest: await digestOf(bytes) }), { method: "PUT" });
    await expectBlobCreated(put, repo, bytes);
  });

  it("takes Content-Range chunks in order", async () => {
    const repo = uniqueRepo("uploads");
    const bytes = randomBytes(3000);
    const { location } = await registry.openUpload(repo);
    for (const [start, end] of [
      [0, 999],
      [1000, 1999],
      [2000, 2999],
    ] as const) {
      const res = await call(location, {
        method: "PATCH",
        headers: { "Content-Range": `${start}-${end}`, "Content-Type": "application/octet-stream" },
        body: bytes.slice(start, end + 1),
      });
      expect(res.status).toBe(202);
      expect(res.headers.get("Range")).toBe(`0-${end}`);
    }
    const put = await call(withParams(location, { digest: await digestOf(bytes) }), { method: "PUT" });
    await expectBlobCreated(put, repo, bytes);
  });

  it("refuses an out-of-order chunk with 416 and the Range received so far, and keeps the session", async () => {
    const repo = uniqueRepo("uploads");
    const bytes = randomBytes(2000);
    const { location, uuid } = await registry.openUpload(repo);
    const first = await call(location, {
      method: "PATCH",
      headers: { "Content-Range": "0-999" },
      body: bytes.slice(0, 1000),
    });
    expect(first.status).toBe(202);
    const skipped = await call(location, {
      method: "PATCH",
      headers: { "Content-Range": "1500-1999" },
      body: bytes.slice(1500),
    });
    expect(skipped.headers.get("Range")).toBe("0-999");
    expect(skipped.headers.get("Location")).toBe(location);
    expect(skipped.headers.get("Docker-Upload-UUID")).toBe(uuid);
    await expectOciError(skipped, 416, "RANGE_INVALID");
    const replayed = await call(location, {
      method: "PATCH",
      headers: { "Content-Range": "0-999" },
      body: bytes.slice(0, 1000),
    });
    await expectOciError(replayed, 416, "RANGE_INVALID");
    const rest = await call(location, {
      method: "PATCH",
      headers: { "Content-Range": "1000-1999" },
      body: bytes.slice(1000),
    });
    expect(rest.status).toBe(202);
    const put = await call(withParams(location, { digest: await digestOf(bytes) }), { method: "PUT" });
    await expectBlobCreated(put, repo, bytes);
  });

  it("refuses a chunk whose Content-Range and Content-Length disagree with 400 SIZE_INVALID", async () => {
    const repo = uniqueRepo("uploads");
    const { location } = await registry.openUpload(repo);
    const res = await call(location, {
      method: "PATCH",
      headers: { "Content-Range": "0-99" },
      body: randomBytes(50),
    });
    await expectOciError(res, 400, "SIZE_INVALID");
    const status = await call(location);
    expect(status.status).toBe(204);
    expect(status.headers.get("Range")).toBe("0-0");
  });

  it("refuses a malformed Content-Range with 400 BLOB_UPLOAD_INVALID", async () => {
    const { location } = await registry.openUpload(uniqueRepo("uploads"));
    const res = await call(location, {
      method: "PATCH",
      headers: { "Content-Range": "bytes=a-b" },
      body: randomBytes(10),
    });
    await expectOciError(res, 400, "BLOB_UPLOAD_INVALID");
  });

  it("closes with the final chunk in the PUT body", async () => {
    const repo = uniqueRepo("uploads");
    const bytes = randomBytes(5000);
    const { location } = await registry.openUpload(repo);
    const patch = await call(location, { method: "PATCH", body: bytes.slice(0, 3000) });
    expect(patch.status).toBe(202);
    const put = await call(withParams(location, { digest: await digestOf(bytes) }), {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream" },
      body: bytes.slice(3000),
    });
    await expectBlobCreated(put, repo, bytes);
  });

  it("closes with the whole blob in the PUT body of a fresh session", async () => {
    const repo = uniqueRepo("uploads");
    const bytes = randomBytes(5000);
    const { location } = await registry.openUpload(repo);
    const put = await call(withParams(location, { digest: await digestOf(bytes) }), { method: "PUT", body: bytes });
    await expectBlobCreated(put, repo, bytes);
  });

  it("closes an empty upload as the empty blob", async () => {
    const repo = uniqueRepo("uploads");
    const empty = new Uint8Array(0);
    const { location } = await registry.openUpload(repo);
    const put = await call(withParams(location, { digest: await digestOf(empty) }), { method: "PUT" });
    await expectStatus(put, 201);
    const head = await registry.blob(repo, await digestOf(empty), { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("Content-Length")).toBe("0");
  });

  it("reports progress on GET: 204 with Range, Location and UUID", async () => {
    const repo = uniqueRepo("uploads");
    const { location, uuid } = await registry.openUpload(repo);
    const before = await call(location);
    expect(before.status).toBe(204);
    expect(before.headers.get("Range")).toBe("0-0");
    await call(location, { method: "PATCH", body: randomBytes(1234) });
    const after = await call(location);
    expect(after.status).toBe(204);
    expect(after.headers.get("Range")).toBe("0-1233");
    expect(after.headers.get("Location")).toBe(location);
    expect(after.headers.get("Docker-Upload-UUID")).toBe(uuid);
  });

  it("cancels on DELETE: 204, then 404 BLOB_UPLOAD_UNKNOWN, with nothing left stored", async () => {
    const repo = uniqueRepo("uploads");
    const { location, uuid } = await registry.openUpload(repo);
    await call(location, { method: "PATCH", body: randomBytes(1000) });
    const del = await call(location, { method: "DELETE" });
    expect(del.status).toBe(204);
    await expectOciError(await call(location), 404, "BLOB_UPLOAD_UNKNOWN");
    await expectOciError(await call(location, { method: "PATCH", body: randomBytes(10) }), 404, "BLOB_UPLOAD_UNKNOWN");
    await expectOciError(await call(location, { method: "DELETE" }), 404, "BLOB_UPLOAD_UNKNOWN");
    expect(await uploadLeftovers(uuid)).toEqual([]);
  });

  it("forgets a session once it completes", async () => {
    const repo = uniqueRepo("uploads");
    const bytes = randomBytes(100);
    const { location, uuid } = await registry.openUpload(repo);
    await expectStatus(
      await call(withParams(location, { digest: await digestOf(bytes) }), { method: "PUT", body: bytes }),
      201,
    );
    await expectOciError(await call(location), 404, "BLOB_UPLOAD_UNKNOWN");
    expect(await uploadLeftovers(uuid)).toEqual([]);
  });

  it("does not let another repository use a session", async () => {
    const { uuid } = await registry.openUpload(uniqueRepo("uploads"));
    const other = uniqueRepo("uploads");
    await expectOciError(await call(`/v2/${other}/blobs/uploads/${uuid}`), 404, "BLOB_UPLOAD_UNKNOWN");
  });

  it("refuses a PUT without ?digest= with 400 DIGEST_INVALID", async () => {
    const { location } = await registry.openUpload(uniqueRepo("uploads"));
    await expectOciError(await call(location, { method: "PUT", body: randomBytes(10) }), 400, "DIGEST_INVALID");
  });
});

describe("digest verification", () => {
  it("refuses a monolithic upload whose bytes do not match with 400 DIGEST_INVALID and keeps nothing", async () => {
    const repo = uniqueRepo("uploads");
    const bytes = randomBytes(4096);
    const claimed = await digestOf(randomBytes(4096));
    const res = await call(`/v2/${repo}/blobs/uploads/?digest=${claimed}`, { method: "POST", body: bytes });
    await expectOciError(res, 400, "DIGEST_INVALID");
    const actual = await digestOf(bytes);
    expect(await blobObjects(claimed)).toEqual([]);
    expect(await blobObjects(actual)).toEqual([]);
    expect(await isLinked(repo, claimed)).toBe(false);
    expect((await registry.blob(repo, claimed, { method: "HEAD" })).status).toBe(404);
  });

  it("refuses a session upload whose bytes do not match, keeps nothing and ends the session", async () => {
    const repo = uniqueRepo("uploads");
    const bytes = randomBytes(4096);
    const claimed = await digestOf(randomBytes(4096));
    const { location, uuid } = await registry.openUpload(repo);
    await call(location, { method: "PATCH", body: bytes });
    await expectOciError(
      await call(withParams(location, { digest: claimed }), { method: "PUT" }),
      400,
      "DIGEST_INVALID",
    );
    expect(await blobObjects(claimed)).toEqual([]);
    expect(await blobObjects(await digestOf(bytes))).toEqual([]);
    expect(await isLinked(repo, claimed)).toBe(false);
    expect(await uploadLeftovers(uuid)).toEqual([]);
    await expectOciError(await call(location), 404, "BLOB_UPLOAD_UNKNOWN");
  });

  it("refuses a mismatching upload of a blob that is already stored, and does not link it", async () => {
    const bytes = randomBytes(2048);
    const digest = await registry.pushBlob(uniqueRepo("uploads"), bytes);
    const repo = uniqueRepo("uploads");
    const res = await call(`/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: "POST", body: randomBytes(2048) });
    await expectOciError(res, 400, "DIGEST_INVALID");
    expect(await isLinked(repo, digest)).toBe(false);
    expect(await blobObjects(digest)).toHaveLength(1);
  });
});

describe("cross-repository mounts", () => {
  it("mounts a blob from another repository with 201, without storing it again", async () => {
    const source = uniqueRepo("uploads");
    const target = uniqueRepo("uploads");
    const bytes = randomBytes(3000);
    const digest = await registry.pushBlob(source, bytes);
    const res = await call(`/v2/${target}/blobs/uploads/?mount=${digest}&from=${source}`, { method: "POST" });
    expect(res.status).toBe(201);
    expect(res.headers.get("Location")).toBe(`http://registry.test/v2/${target}/blobs/${digest}`);
    expect(res.headers.get("Docker-Content-Digest")).toBe(digest);
    expect(await bytesOf(await registry.blob(target, digest))).toEqual(bytes);
    expect(await blobObjects(digest)).toHaveLength(1);
    expect(await isLinked(target, digest)).toBe(true);
  });

  it("mounts automatically when `from` is omitted and the blob is stored", async () => {
    const bytes = randomBytes(3000);
    const digest = await registry.pushBlob(uniqueRepo("uploads"), bytes);
    const target = uniqueRepo("uploads");
    const res = await call(`/v2/${target}/blobs/uploads/?mount=${digest}`, { method: "POST" });
    expect(res.status).toBe(201);
    expect(res.headers.get("Docker-Content-Digest")).toBe(digest);
    expect(await bytesOf(await registry.blob(target, digest))).toEqual(bytes);
  });

  it("falls back to a new session (202) when the blob is not stored anywhere", async () => {
    const target = uniqueRepo("uploads");
    const missing = await digestOf(randomBytes(64));
    const res = await call(`/v2/${target}/blobs/uploads/?mount=${missing}&from=${uniqueRepo("uploads")}`, {
      method: "POST",
    });
    expect(res.status).toBe(202);
    const { location } = uploadOf(res);
    expect(res.headers.get("Range")).toBe("0-0");
    expect(await isLinked(target, missing)).toBe(false);
    const bytes = randomBytes(64);
    const put = await call(withParams(location, { digest: await digestOf(bytes) }), { method: "PUT", body: bytes });
    await expectBlobCreated(put, target, bytes);
  });

  it("falls back to a new session when `from` does not have the blob, even if another repository does", async () => {
    const digest = await registry.pushBlob(uniqueRepo("uploads"), randomBytes(64));
    const target = uniqueRepo("uploads");
    const res = await call(`/v2/${target}/blobs/uploads/?mount=${digest}&from=${uniqueRepo("uploads")}`, {
      method: "POST",
    });
    expect(res.status).toBe(202);
    expect(await isLinked(target, digest)).toBe(false);
  });
});

describe("content-addressed storage", () => {
  it("stores a blob pushed to two repositories once under blobs/, however it was uploaded", async () => {
    const bytes = randomBytes(8192);
    const first = uniqueRepo("uploads");
    const second = uniqueRepo("uploads");
    const digest = await registry.pushBlob(first, bytes);
    const { location } = await registry.openUpload(second);
    await call(location, { method: "PATCH", body: streamOf(bytes, 1000) });
    await expectStatus(await call(withParams(location, { digest }), { method: "PUT" }), 201);
    expect(await blobObjects(digest)).toHaveLength(1);
    expect(await isLinked(first, digest)).toBe(true);
    expect(await isLinked(second, digest)).toBe(true);
    expect(await bytesOf(await registry.blob(second, digest))).toEqual(bytes);
  });
});
