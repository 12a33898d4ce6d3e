/**
 * Blobs past R2's 5 GiB single-put limit, each in ONE request, against `npm start`: five in a
 * row (alternately a PATCH of the whole blob and a monolithic POST ?digest=, the path of
 * containerd's PUT), each read back and hashed; then containerd's own `ctr image push` of an image
 * with a 5.5 GB layer. Opt in with E2E_HUGE=1: it moves about 40 GB and takes 10 minutes or more.
 *
 * A 6 GB push of the registry bench once failed with `socket hang up` (ECONNRESET) before a byte
 * was taken: its client reused a keep-alive connection that workerd had closed after 15 s idle,
 * unseen while hashing the blob held Node's event loop. The bench and these tests send each big
 * request on a connection of its own (test/helpers/big-blobs.ts `send`); generating each blob
 * here holds the event loop the same way, so a pooled connection would fail again.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { request } from "node:http";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MediaType } from "../../core/oci/media-types.ts";
import { generatedBlob, pushGenerated, pushMonolithic, send } from "../helpers/big-blobs.ts";
import { startContainerd, type Containerd } from "../helpers/containerd.ts";
import { run } from "../helpers/process.ts";
import { collectGarbage } from "../helpers/registry-http.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";
import { findWorkerd, peakRssDuring } from "../helpers/workerd-proc.ts";

const HUGE = process.env.E2E_HUGE === "1";
const FIVE_AND_A_HALF_GB = 5_500_000_000;
const PAST_5_GIB = 5 * 1024 ** 3 + 300_000_000;

describe.runIf(HUGE)("blobs past 5 GiB in one request (E2E_HUGE=1)", () => {
  let registry: Registry;
  beforeAll(async () => {
    registry = await startRegistry({ launcher: "npm start", vars: { GC_GRACE_SECONDS: "0", EDGE_TTL_SECONDS: "0" } });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it("takes five in a row, each read back byte for byte, in bounded memory", async () => {
    const workerd = findWorkerd(registry.port).worker;
    for (let i = 0; i < 5; i++) {
      const blob = generatedBlob(PAST_5_GIB);
      const started = Date.now();
      const { peakMb } = await peakRssDuring([workerd], async () => {
        if (i % 2 === 0) await pushGenerated(registry.url, "huge/one", blob);
        else await pushMonolithic(registry.url, "huge/one", blob);
      });
      console.log(
        `push ${i} (${i % 2 === 0 ? "PATCH" : "POST ?digest="}) of ${PAST_5_GIB} bytes: ${(Date.now() - started) / 1000} s, workerd peak RSS ${peakMb[0]!.toFixed(0)} MB`,
      );
      expect(peakMb[0]!).toBeLessThan(1500);
      const read = await readBack(`${registry.url}/v2/huge/one/blobs/${blob.digest}`);
      expect(read).toEqual({ status: 200, size: PAST_5_GIB, digest: blob.digest });
      // Keep the disk: delete and collect before the next.
      expect((await fetch(`${registry.url}/v2/huge/one/blobs/${blob.digest}`, { method: "DELETE" })).status).toBe(202);
      await collectGarbage(registry.url);
    }
  }, 3_600_000);

  it("takes containerd's push of an image with a 5.5 GB layer", async () => {
    const work = await mkdtemp(join(tmpdir(), "2dfs-huge-"));
    const containerd: Containerd = await startContainerd();
    try {
      const archive = await ociArchive(work, FIVE_AND_A_HALF_GB);
      const ref = `${registry.host}/huge/ctr:v1`;
      const imported = await containerd.ctr(["image", "import", "--no-unpack", "--index-name", ref, archive.path]);
      expect(imported.code, imported.stderr).toBe(0);
      await rm(archive.path);
      const started = Date.now();
      const pushed = await containerd.ctr(["image", "push", "--plain-http", ref]);
      console.log(`ctr image push of a ${FIVE_AND_A_HALF_GB}-byte layer: ${(Date.now() - started) / 1000} s`);
      expect(pushed.code, pushed.stderr).toBe(0);
      const read = await readBack(`${registry.url}/v2/huge/ctr/blobs/${archive.layer}`);
      expect(read).toEqual({ status: 200, size: FIVE_AND_A_HALF_GB, digest: archive.layer });
    } finally {
      await containerd.stop();
      await rm(work, { recursive: true, force: true });
    }
  }, 3_600_000);
});

describe("a big request after Node's event loop was held past workerd's 15 s keep-alive", () => {
  let registry: Registry;
  beforeAll(async () => {
    registry = await startRegistry({ launcher: "npm start" });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  /** One request on Node's pooled keep-alive agent, as the bench's client once sent them. */
  const pooled = (): Promise<string> =>
    new Promise((resolve) => {
      const req = request(`${registry.url}/v2/`, (res) => {
        res.resume();
        res.on("end", () => resolve(String(res.statusCode)));
      });
      req.on("error", (e) => resolve(`${(e as NodeJS.ErrnoException).code} ${e.message}`));
      req.end();
    });
  /** Synchronous work, as hashing a generated 6 GB blob is. */
  const holdEventLoop = (ms: number): void => {
    for (const until = Date.now() + ms; Date.now() < until;);
  };

  it("fails on a pooled connection with the bench's `socket hang up`, and passes on one of its own", async () => {
    expect(await pooled()).toBe("200");
    holdEventLoop(16_000);
    expect(await pooled()).toBe("ECONNRESET socket hang up");
    expect((await send("GET", `${registry.url}/v2/`, {})).status).toBe(200);
    holdEventLoop(16_000);
    expect((await send("GET", `${registry.url}/v2/`, {})).status).toBe(200);
  }, 120_000);
});

/** GET of a blob, hashed as it streams (nothing held). */
async function readBack(url: string): Promise<{ status: number; size: number; digest: string }> {
  const res = await fetch(url);
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return { status: res.status, size, digest: `sha256:${hash.digest("hex")}` };
}

/** An OCI archive of one image whose one layer is `size` generated bytes (an uncompressed layer). */
async function ociArchive(work: string, size: number): Promise<{ path: string; layer: string }> {
  const dir = join(work, "layout");
  await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  const layer = generatedBlob(size);
  const out = createWriteStream(join(dir, "blobs", "sha256", layer.digest.slice(7)));
  for (const chunk of layer.chunks(0, size)) {
    if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
  }
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  const blob = async (bytes: string): Promise<{ digest: string; size: number }> => {
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    await writeFile(join(dir, "blobs", "sha256", digest.slice(7)), bytes);
    return { digest, size: Buffer.byteLength(bytes) };
  };
  const config = await blob(
    JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [layer.digest] } }),
  );
  const manifest = await blob(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, ...config },
      layers: [{ mediaType: MediaType.OciLayerTar, digest: layer.digest, size }],
    }),
  );
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [{ mediaType: MediaType.OciManifest, ...manifest, platform: { os: "linux", architecture: "amd64" } }],
    }),
  );
  const path = join(work, "image.tar");
  await run("tar", ["-cf", path, "-C", dir, "."]);
  await rm(dir, { recursive: true });
  return { path, layer: layer.digest };
}
