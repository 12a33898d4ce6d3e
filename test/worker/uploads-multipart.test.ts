/**
 * Uploads larger than one R2 multipart part (10 MiB, DEFAULT_PART_SIZE): chunks of any size are cut
 * into equal parts plus a tail, the completed multipart object is the blob, and reads that cross a
 * part boundary still return the right bytes.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { keys } from "../../worker/storage/keys.ts";
import { DEFAULT_PART_SIZE } from "../../worker/storage/uploads.ts";
import { digestOf, MiB, randomBytes, streamOf } from "./helpers/bytes.ts";
import { bytesOf, call, expectOciError, expectStatus, registry, uniqueRepo, withParams } from "./helpers/registry.ts";
import { blobObjects, isLinked, uploadLeftovers } from "./helpers/storage.ts";

describe("multi-part uploads", () => {
  it("assembles 7 + 9 + 5 MiB chunks into one 21 MiB blob that reads back byte for byte", async () => {
    expect(DEFAULT_PART_SIZE).toBe(10 * MiB);
    const repo = uniqueRepo("multipart");
    const bytes = randomBytes(21 * MiB);
    const digest = await digestOf(bytes);
    const { location, uuid } = await registry.openUpload(repo);
    // Uneven chunks: the first ends inside part 1, the second crosses into part 2, the third ends in the tail.
    const chunks: [number, number, "range" | "stream"][] = [
      [0, 7 * MiB, "range"],
      [7 * MiB, 16 * MiB, "stream"],
      [16 * MiB, 21 * MiB, "range"],
    ];
    for (const [start, end, how] of chunks) {
      const body = bytes.subarray(start, end);
      const res = await call(location, {
        method: "PATCH",
        headers: how === "range" ? { "Content-Range": `${start}-${end - 1}` } : {},
        body: how === "range" ? body.slice() : streamOf(body, 1 * MiB),
      });
      await expectStatus(res, 202);
      expect(res.headers.get("Range")).toBe(`0-${end - 1}`);
    }
    const put = await call(withParams(location, { digest }), { method: "PUT" });
    await expectStatus(put, 201);
    expect(put.headers.get("Docker-Content-Digest")).toBe(digest);
    // R2 cannot rename: the assembled bytes stay at the upload's data key, which the blob points to.
    expect(await uploadLeftovers(uuid)).toEqual([keys.data(uuid)]);
    expect(await blobObjects(digest)).toHaveLength(1);

    const head = await registry.blob(repo, digest, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("Content-Length")).toBe(String(21 * MiB));
    const get = await registry.blob(repo, digest);
    expect(get.headers.get("Content-Length")).toBe(String(21 * MiB));
    const back = await bytesOf(get);
    expect(await digestOf(back)).toBe(digest);
    expect(back.byteLength).toBe(bytes.byteLength);
    expect(back.every((b, i) => b === bytes[i])).toBe(true);

    // 100 bytes either side of the boundary between part 1 and part 2.
    const from = DEFAULT_PART_SIZE - 100;
    const to = DEFAULT_PART_SIZE + 99;
    const ranged = await registry.blob(repo, digest, { headers: { Range: `bytes=${from}-${to}` } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get("Content-Range")).toBe(`bytes ${from}-${to}/${21 * MiB}`);
    expect(await bytesOf(ranged)).toEqual(bytes.slice(from, to + 1));

    // Mounting the large blob elsewhere links the same data: still one object under blobs/.
    const other = uniqueRepo("multipart");
    const mount = await call(`/v2/${other}/blobs/uploads/?mount=${digest}&from=${repo}`, { method: "POST" });
    expect(mount.status).toBe(201);
    const tail = await registry.blob(other, digest, { headers: { Range: `bytes=-16` } });
    expect(await bytesOf(tail)).toEqual(bytes.slice(-16));
    expect(await blobObjects(digest)).toHaveLength(1);
  });

  it("takes a final chunk in the PUT that completes the last part", async () => {
    const repo = uniqueRepo("multipart");
    const bytes = randomBytes(12 * MiB);
    const digest = await digestOf(bytes);
    const { location } = await registry.openUpload(repo);
    await expectStatus(await call(location, { method: "PATCH", body: bytes.slice(0, 6 * MiB) }), 202);
    const put = await call(withParams(location, { digest }), {
      method: "PUT",
      body: streamOf(bytes.subarray(6 * MiB)),
    });
    await expectStatus(put, 201);
    const back = await bytesOf(await registry.blob(repo, digest));
    expect(await digestOf(back)).toBe(digest);
  });

  it("refuses a multi-part upload whose bytes do not match, and removes its assembled data", async () => {
    const repo = uniqueRepo("multipart");
    const bytes = randomBytes(11 * MiB);
    const claimed = await digestOf(randomBytes(32));
    const { location, uuid } = await registry.openUpload(repo);
    await expectStatus(await call(location, { method: "PATCH", body: bytes }), 202);
    await expectOciError(
      await call(withParams(location, { digest: claimed }), { method: "PUT" }),
      400,
      "DIGEST_INVALID",
    );
    expect(await uploadLeftovers(uuid)).toEqual([]);
    expect(await blobObjects(claimed)).toEqual([]);
    expect(await blobObjects(await digestOf(bytes))).toEqual([]);
    expect(await isLinked(repo, claimed)).toBe(false);
  });

  it("frees the parts of a cancelled multi-part upload", async () => {
    const repo = uniqueRepo("multipart");
    const { location, uuid } = await registry.openUpload(repo);
    await expectStatus(await call(location, { method: "PATCH", body: randomBytes(11 * MiB) }), 202);
    expect((await call(location, { method: "DELETE" })).status).toBe(204);
    expect(await uploadLeftovers(uuid)).toEqual([]);
  });

  it("stores a streamed PATCH of known length as one object, hashed on the way in", async () => {
    const repo = uniqueRepo("multipart");
    const bytes = randomBytes(12 * MiB);
    const digest = await digestOf(bytes);
    const { location, uuid } = await registry.openUpload(repo);
    await expectStatus(await call(location, { method: "PATCH", body: bytes.slice() }), 202);
    const session = (await (await env.BLOBS.get(keys.upload(uuid)))!.json()) as { whole?: boolean; digest?: string };
    expect(session).toMatchObject({ whole: true, digest });
    expect((await env.BLOBS.head(keys.data(uuid)))!.size).toBe(12 * MiB);
    await expectStatus(await call(withParams(location, { digest }), { method: "PUT" }), 201);
    expect(await uploadLeftovers(uuid)).toEqual([keys.data(uuid)]);
    const back = await bytesOf(await registry.blob(repo, digest));
    expect(back.every((b, i) => b === bytes[i])).toBe(true);
  });

  it("cuts a streamed upload into parts when more chunks follow it", async () => {
    const repo = uniqueRepo("multipart");
    const bytes = randomBytes(17 * MiB);
    const digest = await digestOf(bytes);
    const { location, uuid } = await registry.openUpload(repo);
    await expectStatus(await call(location, { method: "PATCH", body: bytes.slice(0, 12 * MiB) }), 202);
    const more = await call(location, {
      method: "PATCH",
      headers: { "Content-Range": `${12 * MiB}-${17 * MiB - 1}` },
      body: bytes.slice(12 * MiB),
    });
    await expectStatus(more, 202);
    expect(more.headers.get("Range")).toBe(`0-${17 * MiB - 1}`);
    await expectStatus(await call(withParams(location, { digest }), { method: "PUT" }), 201);
    expect(await uploadLeftovers(uuid)).toEqual([keys.data(uuid)]);
    const back = await bytesOf(await registry.blob(repo, digest));
    expect(back.byteLength).toBe(17 * MiB);
    expect(back.every((b, i) => b === bytes[i])).toBe(true);
    const from = DEFAULT_PART_SIZE - 100;
    const ranged = await registry.blob(repo, digest, { headers: { Range: `bytes=${from}-${from + 199}` } });
    expect(await bytesOf(ranged)).toEqual(bytes.slice(from, from + 200));
  });
});
