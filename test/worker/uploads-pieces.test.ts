/**
 * Uploads in several requests: each request's bytes become one piece (or, without a length,
 * pieces of the buffer size), a table lists them, and reads that cross a piece boundary still
 * return the right bytes. A single streamed PATCH is one piece, verified without a second read.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { keys } from "../../worker/storage/keys.ts";
import { DEFAULT_BUFFER_SIZE, type UploadSession } from "../../worker/storage/uploads.ts";
import { digestOf, MiB, randomBytes, streamOf } from "./helpers/bytes.ts";
import { bytesOf, call, expectOciError, expectStatus, registry, uniqueRepo, withParams } from "./helpers/registry.ts";
import { blobObjects, isLinked, uploadLeftovers } from "./helpers/storage.ts";

async function sessionOf(uuid: string): Promise<UploadSession> {
  return (await (await env.BLOBS.get(keys.upload(uuid)))!.json()) as UploadSession;
}

describe("uploads in pieces", () => {
  it("assembles 7 + 9 + 5 MiB chunks into one 21 MiB blob that reads back byte for byte", async () => {
    const repo = uniqueRepo("pieces");
    const bytes = randomBytes(21 * MiB);
    const digest = await digestOf(bytes);
    const { location, uuid } = await registry.openUpload(repo);
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
    const pieces = (await sessionOf(uuid)).pieces;
    expect(pieces.map((p) => p.size)).toEqual([7 * MiB, 9 * MiB, 5 * MiB]);
    const put = await call(withParams(location, { digest }), { method: "PUT" });
    await expectStatus(put, 201);
    expect(put.headers.get("Docker-Content-Digest")).toBe(digest);
    // R2 cannot rename: the pieces stay where the upload wrote them, and a table lists them.
    expect((await uploadLeftovers(uuid)).sort()).toEqual([...pieces.map((p) => p.key), keys.pieceTable(uuid)].sort());
    expect(await blobObjects(digest)).toHaveLength(1);

    const head = await registry.blob(repo, digest, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("Content-Length")).toBe(String(21 * MiB));
    const get = await registry.blob(repo, digest);
    expect(get.headers.get("Content-Length")).toBe(String(21 * MiB));
    const back = await bytesOf(get);
    expect(await digestOf(back)).toBe(digest);
    expect(back.every((b, i) => b === bytes[i])).toBe(true);

    // Ranges across each piece boundary, and one spanning a whole piece.
    for (const [from, to] of [
      [7 * MiB - 100, 7 * MiB + 99],
      [16 * MiB - 1, 16 * MiB],
      [7 * MiB - 5, 16 * MiB + 4],
    ] as const) {
      const ranged = await registry.blob(repo, digest, { headers: { Range: `bytes=${from}-${to}` } });
      expect(ranged.status).toBe(206);
      expect(ranged.headers.get("Content-Range")).toBe(`bytes ${from}-${to}/${21 * MiB}`);
      // Compared by digest: a diff of megabytes would not help anyone read a failure.
      const got = await bytesOf(ranged);
      expect(got.byteLength).toBe(to + 1 - from);
      expect(await digestOf(got)).toBe(await digestOf(bytes.slice(from, to + 1)));
    }

    // Mounting the blob elsewhere links the same pieces: still one record under blobs/.
    const other = uniqueRepo("pieces");
    const mount = await call(`/v2/${other}/blobs/uploads/?mount=${digest}&from=${repo}`, { method: "POST" });
    expect(mount.status).toBe(201);
    const tail = await registry.blob(other, digest, { headers: { Range: `bytes=-16` } });
    expect(await bytesOf(tail)).toEqual(bytes.slice(-16));
    expect(await blobObjects(digest)).toHaveLength(1);
  });

  it("cuts a body without a length into pieces of the buffer size", async () => {
    const repo = uniqueRepo("pieces");
    const size = DEFAULT_BUFFER_SIZE + 3 * MiB + 17;
    const bytes = randomBytes(size);
    const digest = await digestOf(bytes);
    const { location, uuid } = await registry.openUpload(repo);
    await expectStatus(await call(location, { method: "PATCH", body: streamOf(bytes, 1 * MiB) }), 202);
    const session = await sessionOf(uuid);
    expect(session.pieces.map((p) => p.size)).toEqual([DEFAULT_BUFFER_SIZE, 3 * MiB + 17]);
    // One request, hashed as it arrived: the close needs no second read.
    expect(session.digest).toBe(digest);
    await expectStatus(await call(withParams(location, { digest }), { method: "PUT" }), 201);
    const back = await bytesOf(await registry.blob(repo, digest));
    expect(back.every((b, i) => b === bytes[i])).toBe(true);
  });

  it("takes a final chunk in the PUT", async () => {
    const repo = uniqueRepo("pieces");
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

  it("refuses an upload in pieces whose bytes do not match, and removes every piece", async () => {
    const repo = uniqueRepo("pieces");
    const bytes = randomBytes(11 * MiB);
    const claimed = await digestOf(randomBytes(32));
    const { location, uuid } = await registry.openUpload(repo);
    await expectStatus(
      await call(location, {
        method: "PATCH",
        headers: { "Content-Range": `0-${5 * MiB - 1}` },
        body: bytes.slice(0, 5 * MiB),
      }),
      202,
    );
    await expectStatus(await call(location, { method: "PATCH", body: bytes.slice(5 * MiB) }), 202);
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

  it("frees the pieces of a cancelled upload", async () => {
    const repo = uniqueRepo("pieces");
    const { location, uuid } = await registry.openUpload(repo);
    await expectStatus(await call(location, { method: "PATCH", body: randomBytes(11 * MiB) }), 202);
    expect(await uploadLeftovers(uuid)).toHaveLength(2);
    expect((await call(location, { method: "DELETE" })).status).toBe(204);
    expect(await uploadLeftovers(uuid)).toEqual([]);
  });

  it("stores a streamed PATCH of known length as one piece, hashed on the way in", async () => {
    const repo = uniqueRepo("pieces");
    const bytes = randomBytes(12 * MiB);
    const digest = await digestOf(bytes);
    const { location, uuid } = await registry.openUpload(repo);
    await expectStatus(await call(location, { method: "PATCH", body: bytes.slice() }), 202);
    const session = await sessionOf(uuid);
    expect(session.digest).toBe(digest);
    expect(session.pieces).toHaveLength(1);
    expect((await env.BLOBS.head(session.pieces[0]!.key))!.size).toBe(12 * MiB);
    await expectStatus(await call(withParams(location, { digest }), { method: "PUT" }), 201);
    expect(await uploadLeftovers(uuid)).toEqual([session.pieces[0]!.key]);
    const back = await bytesOf(await registry.blob(repo, digest));
    expect(back.every((b, i) => b === bytes[i])).toBe(true);
  });

  it("verifies a streamed upload followed by more chunks by reading its pieces once", async () => {
    const repo = uniqueRepo("pieces");
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
    expect((await sessionOf(uuid)).digest).toBeUndefined();
    await expectStatus(await call(withParams(location, { digest }), { method: "PUT" }), 201);
    const back = await bytesOf(await registry.blob(repo, digest));
    expect(back.byteLength).toBe(17 * MiB);
    expect(back.every((b, i) => b === bytes[i])).toBe(true);
  });
});
