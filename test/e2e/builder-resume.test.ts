/**
 * An interrupted push resumes. A 210 MB allotment of random bytes (stored uncompressed, as
 * `--compression auto` decides for data that does not shrink) is pushed in chunks; the push is
 * killed with SIGKILL once the state file under $XDG_STATE_HOME says a chunk is committed, then
 * run again. Against our registry the rerun sends only what the registry lacked, and the blob it
 * ends up with has the right digest and length. Against distribution the rerun may have to start
 * the blob over (a chunk cut half-way leaves its session unusable); it must still complete.
 *
 * The Worker runs with CHUNK_MAX_BYTES=32000000, which it advertises as OCI-Chunk-Max-Length:
 * the CLI's chunks follow it, so the kill lands after one chunk of seven. Distribution gets the
 * CLI's default 95 MB chunks.
 */
import { mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MediaType } from "../../core/oci/media-types.ts";
import { startPeerRegistry, type PeerRegistry } from "../helpers/peer.ts";
import { sleep } from "../helpers/process.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";
import {
  cliSandbox,
  fetchBlobDigest,
  headBlob,
  imageBlobDigests,
  type BuildResult,
  type CliSandbox,
  type PushReport,
  randomFile,
} from "./builder-cli.ts";

const WEIGHTS_BYTES = 210_000_000;
const WORKER_CHUNK = 32_000_000;
const DEFAULT_CHUNK = 95_000_000;

describe("an interrupted push of a 210 MB allotment resumes", () => {
  let registry: Registry;
  let peer: PeerRegistry;
  let sandbox: CliSandbox;
  let spec: string;

  beforeAll(async () => {
    sandbox = await cliSandbox();
    const src = join(sandbox.dir, "model");
    await mkdir(src);
    spec = join(src, "2dfs.json");
    await writeFile(
      spec,
      JSON.stringify({
        allotments: [
          { src: "config.json", dst: "/model/config.json", row: 0, col: 0 },
          { src: "weights.bin", dst: "/model/weights.bin", row: 0, col: 1 },
        ],
      }),
    );
    [registry, peer] = await Promise.all([
      startRegistry({ vars: { CHUNK_MAX_BYTES: String(WORKER_CHUNK) } }),
      startPeerRegistry(),
      writeFile(join(src, "config.json"), '{"hidden_size":4096}\n'),
      randomFile(join(src, "weights.bin"), WEIGHTS_BYTES),
    ]);
  });

  afterAll(async () => {
    await Promise.all([registry?.stop(), peer?.stop(), sandbox?.cleanup()]);
  });

  /** Builds the image for `host`, returning the build and the weights allotment. */
  async function buildFor(
    host: string,
  ): Promise<{ ref: string; build: BuildResult; weights: BuildResult["allotments"][number] }> {
    const ref = `${host}/e2e/weights:v1`;
    const build = await sandbox.json<BuildResult>(["build", "-f", spec, "scratch", ref]);
    const weights = build.allotments.find((a) => a.col === 1)!;
    // Random bytes do not shrink: auto stores them as a plain tar.
    expect(weights.mediaType).toBe(MediaType.OciLayerTar);
    expect(weights.size).toBeGreaterThanOrEqual(200_000_000);
    return { ref, build, weights };
  }

  /** Bytes of every blob of the image but the weights: what a rerun may send besides them. */
  async function otherBlobBytes(build: BuildResult, weightsDigest: string): Promise<number> {
    const digests = new Set([
      ...(await imageBlobDigests(build.layout, build.digest)),
      ...build.allotments.map((a) => a.digest),
    ]);
    digests.delete(weightsDigest);
    const sizes = await Promise.all(
      [...digests].map(async (d) => (await stat(join(build.layout, "blobs", "sha256", d.slice(7)))).size),
    );
    return sizes.reduce((a, b) => a + b, 0);
  }

  /**
   * Starts `push ref`, waits until the saved session of `digest` shows at least `committed`
   * bytes, and kills the push with SIGKILL. Returns the offset the state file held.
   */
  async function killMidPush(ref: string, digest: string, committed: number, size: number): Promise<number> {
    const child = sandbox.spawn(["push", ref]);
    child.stdin.end();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal })),
    );
    let offset = 0;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && child.exitCode === null) {
      const session = (await sandbox.uploadSessions()).find((s) => s.digest === digest);
      if (session && session.offset >= committed) {
        offset = session.offset;
        child.kill("SIGKILL");
        break;
      }
      await sleep(20);
    }
    const end = await exited;
    expect(end, "the push was to be killed half-way, not to finish").toEqual({ code: null, signal: "SIGKILL" });
    expect(offset).toBeGreaterThanOrEqual(committed);
    expect(offset).toBeLessThan(size);
    return offset;
  }

  it("against wrangler dev: the rerun sends only the rest, and the blob has the right digest", async () => {
    const { ref, build, weights } = await buildFor(registry.host);
    const killedAt = await killMidPush(ref, weights.digest, WORKER_CHUNK, weights.size);
    expect(killedAt % WORKER_CHUNK).toBe(0);
    expect((await headBlob(registry.url, "e2e/weights", weights.digest)).status).toBe(404);

    const rerun = await sandbox.json<PushReport>(["push", ref]);
    expect(rerun.digest).toBe(build.digest);
    // Resumed: at most what was not committed before the kill (the registry may have committed
    // one more chunk than the state file had recorded), plus the small blobs.
    expect(rerun.bytesUploaded).toBeGreaterThan(0);
    expect(rerun.bytesUploaded).toBeLessThan(weights.size);
    expect(rerun.bytesUploaded).toBeLessThanOrEqual(
      weights.size - killedAt + (await otherBlobBytes(build, weights.digest)),
    );
    expect(await sandbox.uploadSessions()).toEqual([]);

    const got = await fetchBlobDigest(registry.url, "e2e/weights", weights.digest);
    expect(got).toEqual({
      status: 200,
      bytes: weights.size,
      digest: weights.digest,
      contentLength: String(weights.size),
    });
  });

  it("against distribution: the rerun completes the push, and the blob has the right digest", async () => {
    const { ref, build, weights } = await buildFor(peer.host);
    await killMidPush(ref, weights.digest, DEFAULT_CHUNK, weights.size);

    const rerun = await sandbox.json<PushReport>(["push", ref]);
    expect(rerun.digest).toBe(build.digest);
    expect(rerun.bytesUploaded).toBeGreaterThan(0);
    expect(rerun.bytesUploaded).toBeLessThanOrEqual(weights.size + (await otherBlobBytes(build, weights.digest)));
    expect(await sandbox.uploadSessions()).toEqual([]);

    const got = await fetchBlobDigest(peer.url, "e2e/weights", weights.digest);
    expect(got).toEqual({
      status: 200,
      bytes: weights.size,
      digest: weights.digest,
      contentLength: String(weights.size),
    });
  });
});
