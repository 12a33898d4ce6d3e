/**
 * The contract the storage layer relies on, run against both implementations of Bucket: the
 * in-memory one the interleaving harness uses, and miniflare's local R2 (what `wrangler dev` and
 * the deploy use). If miniflare ever stopped honouring a condition, or the in-memory bucket drifted
 * from it, the harness would prove things about a store that does not exist: this suite is where
 * that shows.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sha256 } from "../../core/oci/digest.ts";
import { IF_ABSENT, ifUnchanged, type Bucket } from "../../worker/storage/bucket.ts";
import { MemoryBucket } from "../../worker/storage/memory-bucket.ts";
import { createStore } from "../../worker/storage/store.ts";

const implementations: [string, () => Bucket][] = [
  ["MemoryBucket", () => new MemoryBucket()],
  ["miniflare R2", () => env.BLOBS],
];

const text = async (o: R2ObjectBody | null) => (o ? new TextDecoder().decode(await o.arrayBuffer()) : null);

describe.each(implementations)("the Bucket contract on %s", (_name, make) => {
  const unique = () => `contract/${crypto.randomUUID()}`;

  it("creates only if absent: the first put wins, the second answers null and writes nothing", async () => {
    const b = make();
    const key = unique();
    const first = await b.put(key, "first", { onlyIf: IF_ABSENT });
    expect(first).not.toBeNull();
    expect(await b.put(key, "second", { onlyIf: IF_ABSENT })).toBeNull();
    expect(await text(await b.get(key))).toBe("first");
  });

  it("writes only over the etag it read: a stale etag answers null and changes nothing", async () => {
    const b = make();
    const key = unique();
    const v1 = (await b.put(key, "v1"))!;
    const v2 = await b.put(key, "v2", { onlyIf: ifUnchanged(v1.etag) });
    expect(v2).not.toBeNull();
    expect(await b.put(key, "v3", { onlyIf: ifUnchanged(v1.etag) })).toBeNull();
    expect(await text(await b.get(key))).toBe("v2");
    // A conditional write over a deleted object fails: a session deleted meanwhile is not revived.
    await b.delete(key);
    expect(await b.put(key, "v4", { onlyIf: ifUnchanged(v2!.etag) })).toBeNull();
    expect(await b.head(key)).toBeNull();
  });

  it("gives equal content an equal etag, which is why every record write carries a fresh value", async () => {
    const b = make();
    const [k1, k2] = [unique(), unique()];
    const a = (await b.put(k1, "same"))!;
    const c = (await b.put(k2, "same"))!;
    expect(a.etag).toBe(c.etag);
    expect((await b.put(k2, "other"))!.etag).not.toBe(a.etag);
  });

  it("refuses a body whose sha256 does not match, and keeps nothing", async () => {
    const b = make();
    const key = unique();
    const right = (await sha256("payload")).slice(7);
    await b.put(key, "payload", { sha256: right });
    const wrong = (await sha256("other")).slice(7);
    const other = unique();
    await expect(b.put(other, "payload", { sha256: wrong })).rejects.toThrow();
    expect(await b.head(other)).toBeNull();
  });

  it("stores a streamed body of known length and reads ranges of it", async () => {
    const b = make();
    const key = unique();
    const bytes = crypto.getRandomValues(new Uint8Array(5000));
    const { readable, writable } = new FixedLengthStream(bytes.byteLength);
    const w = writable.getWriter();
    void w.write(bytes).then(() => w.close());
    await b.put(key, readable, { customMetadata: { loc: key } });
    const head = (await b.head(key))!;
    expect(head.size).toBe(5000);
    expect(head.customMetadata).toEqual({ loc: key });
    const part = await b.get(key, { range: { offset: 100, length: 50 } });
    expect(new Uint8Array(await part!.arrayBuffer())).toEqual(bytes.slice(100, 150));
    const suffix = await b.get(key, { range: { suffix: 10 } });
    expect(new Uint8Array(await suffix!.arrayBuffer())).toEqual(bytes.slice(-10));
  });

  it("lists in key order, page by page with a cursor, after startAfter, folding prefixes at a delimiter", async () => {
    const b = make();
    const root = `${unique()}/`;
    const names = ["a", "b/1", "b/2", "c", "d"];
    for (const n of names) await b.put(root + n, n, { customMetadata: { n } });
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await b.list({ prefix: root, limit: 2, ...(cursor ? { cursor } : {}) });
      seen.push(...page.objects.map((o) => o.key.slice(root.length)));
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    expect(seen).toEqual(names);
    const after = await b.list({ prefix: root, startAfter: `${root}b/1` });
    expect(after.objects.map((o) => o.key.slice(root.length))).toEqual(["b/2", "c", "d"]);
    const folded = await b.list({ prefix: root, delimiter: "/" });
    expect(folded.objects.map((o) => o.key.slice(root.length))).toEqual(["a", "c", "d"]);
    expect(folded.delimitedPrefixes).toEqual([`${root}b/`]);
    const withMeta = await b.list({ prefix: `${root}c`, include: ["customMetadata"] });
    expect(withMeta.objects[0]!.customMetadata).toEqual({ n: "c" });
    await b.delete(names.map((n) => root + n));
    expect((await b.list({ prefix: root })).objects).toEqual([]);
  });
});

describe.each(implementations)("the Store contract on %s", (_name, make) => {
  it("commits an upload session change only over the state it read", async () => {
    const store = createStore({ bucket: make() });
    const loaded = await store.uploads.create("contract/repo");
    const body = () => new Blob([new Uint8Array([1, 2, 3])]).stream() as ReadableStream<Uint8Array>;
    const next = await store.uploads.append(loaded, body(), 3);
    expect(next.session.offset).toBe(3);
    // A second writer that read the old state loses: 416 with the progress the winner made.
    await expect(store.uploads.append(loaded, body(), 3)).rejects.toMatchObject({
      code: "RANGE_INVALID",
      headers: { Range: "0-2" },
    });
    // Cancelling wins over nothing; cancelling again is unknown.
    await store.uploads.cancel(next);
    await expect(store.uploads.cancel(next)).rejects.toMatchObject({ code: "BLOB_UPLOAD_UNKNOWN" });
  });

  it("records a blob once, links each repository to the one recorded copy, and deletes the redundant one", async () => {
    const bucket = make();
    const store = createStore({ bucket });
    const bytes = crypto.getRandomValues(new Uint8Array(64));
    const digest = await sha256(bytes);
    const stream = () => new Blob([bytes]).stream() as ReadableStream<Uint8Array>;
    const a = await store.blobs.putStream("contract/a", digest, stream(), bytes.byteLength);
    const b = await store.blobs.putStream("contract/b", digest, stream(), bytes.byteLength);
    expect(b.loc).toBe(a.loc);
    // The second push stored its own copy first (it may not rely on one a collection could take),
    // then found the record and deleted its copy: one data object is left.
    const data = await bucket.list({ prefix: "data/" });
    expect(data.objects.filter((o) => o.key === a.loc)).toHaveLength(1);
    expect((await store.blobs.stat("contract/b", digest))!.loc).toBe(a.loc);
    const read = new Uint8Array(await new Response(await store.blobs.open(b)).arrayBuffer());
    expect(read).toEqual(bytes);
    // Mounting needs no bytes: the record names the copy.
    expect((await store.blobs.commit("contract/c", digest))!.loc).toBe(a.loc);
  });
});
