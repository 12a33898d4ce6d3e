/**
 * The registry client against the real CNCF distribution registry (Debian `docker-registry`),
 * reached through a recording proxy that shows what went over the wire and injects the faults
 * networks produce. skopeo confirms that what was pushed is an image other tools read.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { MediaType } from "../../core/oci/media-types.ts";
import { AuthError } from "../../builder-cli/src/registry/auth.ts";
import { BlobLocations } from "../../builder-cli/src/registry/blob-locations.ts";
import { RegistryClient, type PushEvent, type RegistryClientOptions } from "../../builder-cli/src/registry/client.ts";
import type { BlobSource, ImageToPush, ManifestToPush } from "../../builder-cli/src/registry/image.ts";
import { parseImageRef } from "../../builder-cli/src/registry/ref.ts";
import { SourceError } from "../../builder-cli/src/registry/retry.ts";
import { copyImage } from "../../builder-cli/src/export/copy.ts";
import { RegistrySource } from "../../builder-cli/src/store/registry-source.ts";
import {
  startPeerRegistry,
  startPeerRegistryWithAuth,
  type AuthPeerRegistry,
  type PeerRegistry,
} from "../helpers/peer-registry.ts";
import { anImage } from "../helpers/images/builder.ts";
import { OciLayout, writeImage, type WrittenImage } from "../helpers/images/layout.ts";
import { startRecordingProxy, type RecordingProxy, type SeenRequest } from "../helpers/recording-proxy.ts";
import { inspect, inspectRaw, listTags } from "../helpers/skopeo.ts";

const MiB = 1024 * 1024;
const CHUNK = 5 * MiB;
const FAST_RETRY = { baseDelayMs: 20, maxDelayMs: 200 };

let work: string;
let peer: PeerRegistry;
let proxy: RecordingProxy;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "2dfs-regclient-"));
  peer = await startPeerRegistry();
  proxy = await startRecordingProxy(peer.url);
});

afterAll(async () => {
  await proxy?.stop();
  await peer?.stop();
  await rm(work, { recursive: true, force: true });
});

beforeEach(() => {
  proxy.seen.length = 0;
  proxy.setFaults(undefined);
});

function client(extra: Partial<RegistryClientOptions> & { events?: PushEvent[] } = {}): RegistryClient {
  const { events, ...opts } = extra;
  return new RegistryClient({
    registry: proxy.host,
    plainHttp: true,
    retry: FAST_RETRY,
    uploadStateDir: join(work, "state"),
    onEvent: (e) => events?.push(e),
    ...opts,
  });
}

function fileBlob(path: string, d: { digest: string; size: number; mediaType: string }): BlobSource {
  return {
    digest: d.digest,
    size: d.size,
    mediaType: d.mediaType,
    open: () => Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>,
    openAt: (offset) => Readable.toWeb(createReadStream(path, { start: offset })) as ReadableStream<Uint8Array>,
  };
}

/** An image written by the test image builder, as the push API takes it: children first, root last. */
async function toPush(img: WrittenImage, tag?: string): Promise<ImageToPush> {
  const layout = new OciLayout(img.dir);
  const blobs: BlobSource[] = [];
  const manifests: ManifestToPush[] = [];
  for (const p of img.platforms) {
    for (const d of [...p.layers.map((l) => l.descriptor), p.config.descriptor])
      blobs.push(fileBlob(layout.blobPath(d.digest), d));
    manifests.push({ ...p.manifest.descriptor, bytes: await layout.readBlob(p.manifest.digest) });
  }
  if (img.digest !== img.platforms[0]!.manifest.digest) {
    manifests.push({ ...img.descriptor, bytes: await layout.readBlob(img.digest) });
  }
  return tag === undefined ? { blobs, manifests } : { tag, blobs, manifests };
}

async function bytesOf(s: ReadableStream<Uint8Array>): Promise<Buffer> {
  return Buffer.from(await new Response(s).arrayBuffer());
}

async function fileDigest(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const b of createReadStream(path)) h.update(b as Buffer);
  return `sha256:${h.digest("hex")}`;
}

/** The `from` of a cross-repository mount request. */
const mountQuery = (url: string): string | null => new URL(url, "http://registry").searchParams.get("from");
const uploads = (seen: readonly SeenRequest[]): SeenRequest[] => seen.filter((r) => r.url.includes("/blobs/uploads/"));
const patches = (seen: readonly SeenRequest[]): SeenRequest[] =>
  seen.filter((r) => r.method === "PATCH" && typeof r.outcome === "number" && r.outcome < 300);

/** Asserts that forwarded PATCHes cover [from, size) in order, each with an exact Content-Length. */
function expectContiguousChunks(seen: readonly SeenRequest[], from: number, size: number): void {
  let next = from;
  for (const r of patches(seen)) {
    const [start, end] = r.contentRange!.split("-").map(Number) as [number, number];
    expect(start).toBe(next);
    expect(Number(r.contentLength)).toBe(end - start + 1);
    expect(end - start + 1).toBeLessThanOrEqual(CHUNK);
    if (end + 1 < size) expect((end + 1) % CHUNK).toBe(0);
    expect(r.transferEncoding).toBeUndefined();
    next = end + 1;
  }
  expect(next).toBe(size);
}

/**
 * The upload sessions distribution still holds open in `repo`: each keeps a `startedat` file
 * until it is completed or cancelled (a cancel leaves only its hash state behind).
 */
async function openUploads(repo: string): Promise<string[]> {
  const dir = join(peer.dir, "data/docker/registry/v2/repositories", repo, "_uploads");
  const entries = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return entries.filter((e) => e.endsWith("startedat"));
}

/** A 30 MB uncompressed layer of random bytes: six chunks of 5 MiB. */
async function bigImage(
  name: string,
): Promise<{ img: WrittenImage; push: ImageToPush; layer: BlobSource; path: string }> {
  const img = await writeImage(
    join(work, name),
    anImage().compression("none").randomLayers(1, 30_000_000).index(false),
    name,
  );
  const push = await toPush(img, "v1");
  const layer = push.blobs[0]!;
  return { img, push, layer, path: new OciLayout(img.dir).blobPath(layer.digest as `sha256:${string}`) };
}

describe("pushing to the distribution registry", () => {
  let small: WrittenImage;

  it("pushes an index with two layers that skopeo reads byte for byte", async () => {
    small = await writeImage(join(work, "small"), anImage().randomLayers(2, 300_000).index(true), "v1");
    const image = await toPush(small, "v1");
    const events: PushEvent[] = [];
    const report = await client({ events }).pushImage("tdfs/small", image);

    expect(report).toMatchObject({
      blobsTotal: 3,
      blobsSkipped: 0,
      blobsMounted: 0,
      blobsUploaded: 3,
      digest: small.digest,
    });
    expect(report.bytesUploaded).toBeGreaterThanOrEqual(image.blobs.reduce((n, b) => n + b.size, 0));
    // Children by digest, the root by its tag; nothing else is tagged.
    expect(events.filter((e) => e.type === "manifest-pushed").map((e) => e.reference)).toEqual([
      small.platforms[0]!.manifest.digest,
      "v1",
    ]);

    const ref = `docker://${peer.host}/tdfs/small:v1`;
    expect(await inspectRaw(ref)).toEqual(await readFile(new OciLayout(small.dir).blobPath(small.digest)));
    const info = await inspect(ref);
    expect(info.Layers).toEqual(small.platforms[0]!.layers.map((l) => l.descriptor.digest));
    expect(await listTags(`docker://${peer.host}/tdfs/small`)).toEqual(["v1"]);

    const c = client();
    const index = await c.getManifest("tdfs/small", "v1");
    expect(index).toEqual({
      bytes: new Uint8Array(image.manifests[1]!.bytes),
      mediaType: MediaType.OciIndex,
      digest: small.digest,
    });
    const child = await c.getManifest("tdfs/small", small.platforms[0]!.manifest.digest);
    expect(Buffer.from(child.bytes)).toEqual(Buffer.from(image.manifests[0]!.bytes));
    expect(child.mediaType).toBe(MediaType.OciManifest);
    for (const b of image.blobs) {
      const path = new OciLayout(small.dir).blobPath(b.digest as `sha256:${string}`);
      expect(await bytesOf(await c.openBlob("tdfs/small", b.digest))).toEqual(await readFile(path));
    }
    expect(uploads(proxy.seen).every((r) => r.transferEncoding === undefined)).toBe(true);
  });

  it("uploads no blob bytes when the image is pushed again", async () => {
    const events: PushEvent[] = [];
    const report = await client({ events }).pushImage("tdfs/small", await toPush(small, "v1"));
    expect(report).toMatchObject({ blobsTotal: 3, blobsSkipped: 3, blobsUploaded: 0, bytesUploaded: 0 });
    expect(events.filter((e) => e.type === "blob-skipped")).toHaveLength(3);
    expect(uploads(proxy.seen)).toEqual([]);
  });

  it("mounts blobs from another repository of the same registry", async () => {
    const report = await client().pushImage("tdfs/derived", {
      ...(await toPush(small, "v2")),
      mountFrom: "tdfs/small",
    });
    expect(report).toMatchObject({ blobsMounted: 3, blobsUploaded: 0, bytesUploaded: 0 });
    expect(uploads(proxy.seen).map((r) => r.method)).toEqual(["POST", "POST", "POST"]);
    expect((await inspect(`docker://${peer.host}/tdfs/derived:v2`)).Layers).toHaveLength(2);
  });

  it("mounts from the repositories the location index names, and remembers where blobs are", async () => {
    const dir = join(work, "locations");
    const locations = await BlobLocations.open(dir, proxy.host);
    // Pushing to a repository that has everything records it as holding every blob.
    await client({ locations }).pushImage("tdfs/small", await toPush(small, "v1"));
    const digests = (await toPush(small)).blobs.map((b) => b.digest);
    for (const d of digests) expect(locations.repositoriesOf(d)).toEqual(["tdfs/small"]);

    proxy.seen.length = 0;
    const report = await client({ locations: await BlobLocations.open(dir, proxy.host) }).pushImage(
      "tdfs/indexed",
      await toPush(small, "v3"),
    );
    expect(report).toMatchObject({ blobsMounted: 3, blobsUploaded: 0, bytesUploaded: 0 });
    expect(uploads(proxy.seen).map((r) => [r.method, mountQuery(r.url), r.outcome])).toEqual(
      digests.map(() => ["POST", "tdfs/small", 201]),
    );
    expect(patches(proxy.seen)).toEqual([]);
    // Saved for the next run, newest first.
    const reloaded = await BlobLocations.open(dir, proxy.host);
    for (const d of digests) expect(reloaded.repositoriesOf(d)).toEqual(["tdfs/indexed", "tdfs/small"]);
  });

  it("uploads when the repositories the index names lack a blob, and forgets them", async () => {
    const img = await writeImage(join(work, "stale"), anImage().randomLayers(1, 200_000).index(false), "v1");
    const image = await toPush(img, "v1");
    const locations = await BlobLocations.open(join(work, "stale-locations"), proxy.host);
    for (const b of image.blobs) {
      locations.record(b.digest, "tdfs/gone");
      locations.record(b.digest, "tdfs/nowhere");
    }
    proxy.seen.length = 0;
    const report = await client({ locations }).pushImage("tdfs/fresh", image);
    expect(report).toMatchObject({ blobsTotal: 2, blobsMounted: 0, blobsUploaded: 2 });
    for (const b of image.blobs) {
      const tried = uploads(proxy.seen).filter(
        (r) => r.method === "POST" && new URL(r.url, "http://registry").searchParams.get("mount") === b.digest,
      );
      // Newest first; the first refused session is cancelled, the last one carries the upload.
      expect(tried.map((r) => [mountQuery(r.url), r.outcome])).toEqual([
        ["tdfs/nowhere", 202],
        ["tdfs/gone", 202],
      ]);
      expect(locations.repositoriesOf(b.digest)).toEqual(["tdfs/fresh"]);
    }
    expect(uploads(proxy.seen).filter((r) => r.method === "DELETE")).toHaveLength(2);
    expect((await inspect(`docker://${peer.host}/tdfs/fresh:v1`)).Layers).toHaveLength(1);
  });

  it("with mountAnywhere, asks for each blob by digest alone; a refusal's session carries the upload, none is left open", async () => {
    const img = await writeImage(join(work, "anywhere"), anImage().randomLayers(2, 200_000).index(false), "v1");
    const image = await toPush(img, "v1");
    const events: PushEvent[] = [];
    proxy.seen.length = 0;
    const report = await client({ mountAnywhere: true, events }).pushImage("tdfs/anywhere", image);
    // Distribution mounts only with `from`: every blob is uploaded, in the session the mount opened.
    expect(report).toMatchObject({ blobsTotal: 3, blobsMounted: 0, blobsUploaded: 3, bytesMounted: 0 });
    expect(report.bytesUploaded).toBe(image.blobs.reduce((n, b) => n + b.size, 0));
    for (const b of image.blobs) {
      const mine = uploads(proxy.seen).filter((r) => r.url.includes(encodeURIComponent(b.digest)));
      const post = mine.filter((r) => r.method === "POST");
      expect(
        post.map((r) => [new URL(r.url, "http://registry").searchParams.get("mount"), mountQuery(r.url), r.outcome]),
      ).toEqual([[b.digest, null, 202]]);
      // One more request: the PUT that sends the blob into that session.
      expect(mine.filter((r) => r.method === "PUT").map((r) => [r.outcome, Number(r.contentLength)])).toEqual([
        [201, b.size],
      ]);
    }
    expect(uploads(proxy.seen).filter((r) => r.method === "POST")).toHaveLength(3);
    expect(uploads(proxy.seen).filter((r) => r.method === "DELETE")).toEqual([]);
    expect(await openUploads("tdfs/anywhere")).toEqual([]);
    expect((await inspect(`docker://${peer.host}/tdfs/anywhere:v1`)).Layers).toHaveLength(2);

    // Known repositories first, by `from`, and the mount by digest alone last: a stale hint's session is cancelled.
    const locations = await BlobLocations.open(join(work, "anywhere-locations"), proxy.host);
    for (const b of image.blobs) locations.record(b.digest, "tdfs/gone");
    proxy.seen.length = 0;
    const again = await client({ mountAnywhere: true, locations }).pushImage("tdfs/anywhere-2", image);
    expect(again).toMatchObject({ blobsMounted: 0, blobsUploaded: 3 });
    for (const b of image.blobs) {
      const tried = uploads(proxy.seen).filter(
        (r) => r.method === "POST" && r.url.includes(encodeURIComponent(b.digest)),
      );
      expect(tried.map((r) => [mountQuery(r.url), r.outcome])).toEqual([
        ["tdfs/gone", 202],
        [null, 202],
      ]);
    }
    expect(uploads(proxy.seen).filter((r) => r.method === "DELETE")).toHaveLength(3);
    expect(await openUploads("tdfs/anywhere-2")).toEqual([]);
  });

  it("copy counts exactly the blobs of the platforms it copies, each once", async () => {
    const multi = await writeImage(
      join(work, "multi"),
      anImage().platforms(["linux/amd64", "linux/arm64"]).randomLayers(1, 150_000),
      "v1",
    );
    await client().pushImage("tdfs/multi-src", await toPush(multi, "v1"));
    proxy.seen.length = 0;
    const cache = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = join(work, "copy-cache");
    const events: PushEvent[] = [];
    try {
      const source = new RegistrySource(parseImageRef(`${proxy.host}/tdfs/multi-src:v1`));
      const report = await copyImage(source, parseImageRef(`${proxy.host}/tdfs/multi-dst:v1`), undefined, (e) =>
        events.push(e),
      );
      const blobs = multi.platforms.flatMap((p) => [p.config, ...p.layers.map((l) => l.descriptor)]);
      const unique = new Map(blobs.map((b) => [b.digest, b.size]));
      expect(report).toMatchObject({ digest: multi.digest, blobsTotal: unique.size, blobsUploaded: unique.size });
      const bytes = [...unique.values()].reduce((n, b) => n + b, 0);
      const done = events.filter((e) => e.type === "blob-done");
      expect(done.map((e) => e.digest).sort()).toEqual([...unique.keys()].sort());
      expect(done.reduce((n, e) => n + e.size, 0)).toBe(bytes);
      // Distribution ignores the body of a `POST ?digest=`: the one upload that finds this out
      // sends its blob again by PUT; every other blob is sent once.
      const probe = uploads(proxy.seen).filter((r) => r.method === "POST" && r.url.includes("digest="));
      expect(probe).toHaveLength(1);
      const resent = Number(probe[0]!.contentLength);
      expect(report.bytesUploaded).toBe(bytes + resent);
    } finally {
      if (cache === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = cache;
    }
  });

  it("pushes by digest alone when there is no tag", async () => {
    const image = await toPush(small);
    await client().pushImage("tdfs/untagged", image);
    expect((await client().getManifest("tdfs/untagged", small.digest)).digest).toBe(small.digest);
    await expect(client().getManifest("tdfs/untagged", "latest")).rejects.toThrow(/404 MANIFEST_UNKNOWN/);
  });

  it("uploads a 30 MB layer in 5 MiB chunks, each with its own Content-Length", async () => {
    const { push, layer, path } = await bigImage("chunked");
    const report = await client({ chunkSize: CHUNK, monolithicMax: MiB }).pushImage("tdfs/chunked", push);
    expect(report.blobsUploaded).toBe(2);
    expectContiguousChunks(proxy.seen, 0, layer.size);
    expect(patches(proxy.seen)).toHaveLength(Math.ceil(layer.size / CHUNK));
    const fetched = createHash("sha256").update(await bytesOf(await client().openBlob("tdfs/chunked", layer.digest)));
    expect(`sha256:${fetched.digest("hex")}`).toBe(await fileDigest(path));
    expect(await readdir(join(work, "state"))).toEqual([]);
  });

  it("retries a 503 and a dropped connection, continuing from what the registry committed", async () => {
    const { push, layer } = await bigImage("flaky");
    // The layer without openAt: the retry reads and drops the committed bytes.
    const { openAt: _, ...seekless } = layer;
    push.blobs[0] = seekless;
    let posts = 0;
    proxy.setFaults((req, seen) => {
      if (req.method === "POST" && posts++ === 0) return "503";
      if (req.method === "PATCH" && seen.filter((r) => r.method === "PATCH").length === 2) return "drop";
      return undefined;
    });
    const events: PushEvent[] = [];
    const report = await client({ chunkSize: CHUNK, monolithicMax: MiB, events, concurrency: 1 }).pushImage(
      "tdfs/flaky",
      push,
    );
    expect(events.filter((e) => e.type === "blob-retry")).toHaveLength(2);
    expect(proxy.seen.some((r) => r.outcome === "dropped")).toBe(true);
    expectContiguousChunks(proxy.seen, 0, layer.size);
    expect(report.bytesUploaded).toBeLessThan(layer.size + push.blobs[1]!.size + CHUNK + 1);
    const fetched = await bytesOf(await client().openBlob("tdfs/flaky", layer.digest));
    expect(fetched.length).toBe(layer.size);
  });

  it("starts a blob over when a chunk dies half-way and the registry drops the session", async () => {
    const { push, layer } = await bigImage("cut");
    proxy.setFaults((req, seen) =>
      req.method === "PATCH" && seen.filter((r) => r.method === "PATCH").length === 3 ? { cutAfter: MiB } : undefined,
    );
    const events: PushEvent[] = [];
    const report = await client({ chunkSize: CHUNK, monolithicMax: MiB, events }).pushImage("tdfs/cut", push);
    expect(proxy.seen.some((r) => r.outcome === "cut")).toBe(true);
    expect(events.filter((e) => e.type === "blob-retry")).toHaveLength(1);
    // distribution 2.8 cancels a session whose stored size no longer matches its signed offset.
    const ranges = patches(proxy.seen).map((r) => r.contentRange!.split("-")[0]);
    expect(ranges.lastIndexOf("0")).toBeGreaterThan(0);
    expectContiguousChunks(
      proxy.seen.slice(proxy.seen.findLastIndex((r) => r.contentRange?.startsWith("0-"))),
      0,
      layer.size,
    );
    expect(report.bytesUploaded).toBeGreaterThan(layer.size);
    const fetched = createHash("sha256").update(await bytesOf(await client().openBlob("tdfs/cut", layer.digest)));
    expect(`sha256:${fetched.digest("hex")}`).toBe(layer.digest);
  });

  it("resumes an interrupted chunked upload from the stored offset in a later run", async () => {
    const { push, layer, path } = await bigImage("resumed");
    const cut = 2 * CHUNK;
    // First run: the source fails after two chunks, as if the process died there.
    const failing: BlobSource = {
      ...layer,
      open: () => {
        let sent = 0;
        const file = createReadStream(path, { highWaterMark: 64 * 1024 });
        const pieces = file[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
        return new ReadableStream<Uint8Array>({
          async pull(controller) {
            if (sent >= cut) throw new Error("disk unplugged");
            const { value, done } = await pieces.next();
            if (done) return controller.close();
            const piece = value.subarray(0, Math.min(value.length, cut - sent));
            sent += piece.length;
            controller.enqueue(piece);
          },
          cancel: () => void file.destroy(),
        });
      },
    };
    delete failing.openAt;
    const first = client({ chunkSize: CHUNK, monolithicMax: MiB });
    const err = await first
      .pushImage("tdfs/resumed", { ...push, blobs: [failing, push.blobs[1]!] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect(String(err)).toMatch(/disk unplugged/);
    const [stateFile] = await readdir(join(work, "state"));
    expect(JSON.parse(await readFile(join(work, "state", stateFile!), "utf8"))).toMatchObject({
      repository: "tdfs/resumed",
      digest: layer.digest,
      offset: cut,
      chunkSize: CHUNK,
    });

    proxy.seen.length = 0;
    const events: PushEvent[] = [];
    const report = await client({ chunkSize: CHUNK, monolithicMax: MiB, events }).pushImage("tdfs/resumed", push);
    expect(events.find((e) => e.type === "blob-start" && e.digest === layer.digest)).toMatchObject({ offset: cut });
    expect(report.blobsSkipped).toBe(1); // the config made it up in the first run
    expect(report.bytesUploaded).toBe(layer.size - cut);
    expectContiguousChunks(proxy.seen, cut, layer.size);
    const fetched = createHash("sha256").update(await bytesOf(await client().openBlob("tdfs/resumed", layer.digest)));
    expect(`sha256:${fetched.digest("hex")}`).toBe(layer.digest);
    expect(await readdir(join(work, "state"))).toEqual([]);
  });

  it("shows the registry's OCI error for a manifest it refuses", async () => {
    const bogus = new TextEncoder().encode(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: `sha256:${"0".repeat(64)}`, size: 2 },
        layers: [],
      }),
    );
    const digest = `sha256:${createHash("sha256").update(bogus).digest("hex")}`;
    await expect(
      client().putManifest("tdfs/bogus", "v1", { digest, mediaType: MediaType.OciManifest, bytes: bogus }),
    ).rejects.toThrow(/PUT \/v2\/tdfs\/bogus\/manifests\/v1: HTTP 400 MANIFEST_BLOB_UNKNOWN/);
  });
});

describe("pushing to a registry behind htpasswd Basic auth", () => {
  let secured: AuthPeerRegistry;
  let img: WrittenImage;
  beforeAll(async () => {
    secured = await startPeerRegistryWithAuth({ pusher: "s3cret-pw" });
    img = await writeImage(join(work, "authed"), anImage().randomLayers(1, 100_000), "v1");
  });
  afterAll(() => secured?.stop());

  const at = (auth?: { username: string; password: string }): RegistryClient =>
    new RegistryClient({
      registry: secured.host,
      plainHttp: true,
      retry: FAST_RETRY,
      uploadStateDir: join(work, "state"),
      ...(auth ? { auth } : {}),
    });

  it("pushes with the credentials and skopeo reads the image with them", async () => {
    const report = await at({ username: "pusher", password: "s3cret-pw" }).pushImage(
      "tdfs/authed",
      await toPush(img, "v1"),
    );
    expect(report.blobsUploaded).toBe(2);
    const info = await inspect(`docker://${secured.host}/tdfs/authed:v1`, { creds: secured.creds });
    expect(info.Layers).toEqual([img.platforms[0]!.layers[0]!.descriptor.digest]);
  });

  it("says what is missing without credentials, and never shows the password", async () => {
    await expect(at().pushImage("tdfs/authed", await toPush(img, "v1"))).rejects.toThrow(
      /requires a username and password/,
    );
    const wrong = await at({ username: "pusher", password: "not-it" })
      .blobExists("tdfs/authed", img.digest)
      .catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(AuthError);
    expect(String(wrong)).toMatch(/refused the credentials/);
    expect(String(wrong)).not.toContain("not-it");
  });
});
