/**
 * No re-uploads across repositories: the same model pushed into a second and a third
 * repository of our registry (`wrangler dev`) sends no allotment bytes. The CLI remembers which
 * repositories hold each blob and mounts from them; the registry's own log shows mounts answered
 * 201 and no chunk uploads, and the second repository serves every allotment whole.
 */
import { writeFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InspectResult } from "../../builder-cli/src/inspect/inspect.ts";
import { logMark, requestsSince } from "../helpers/request-log.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";
import {
  cliSandbox,
  fetchBlobDigest,
  headBlob,
  randomFile,
  type BuildPushOutput,
  type CliSandbox,
  type PushReport,
} from "./builder-cli.ts";

const WEIGHTS_BYTES = 3_000_000;

describe("pushing one model into several repositories of a registry", () => {
  let registry: Registry;
  let sandbox: CliSandbox;
  let model: string;
  let first: BuildPushOutput;

  beforeAll(async () => {
    sandbox = await cliSandbox();
    [registry, model] = await Promise.all([startRegistry(), sandbox.fixture("2x2", "model")]);
    // A weight file large enough that sending it again could not hide among manifests.
    await randomFile(join(model, "weights.bin"), WEIGHTS_BYTES);
    const spec = JSON.parse(await readFile(join(model, "2dfs.json"), "utf8")) as { allotments: object[] };
    spec.allotments.push({ src: "weights.bin", dst: "/model/weights.bin", row: 2, col: 0 });
    await writeFile(join(model, "2dfs.json"), JSON.stringify(spec));
    first = await sandbox.json<BuildPushOutput>(["build", "scratch", `${registry.host}/e2e/first:v1`, "--push"], {
      cwd: model,
    });
  });

  afterAll(async () => {
    await Promise.all([registry?.stop(), sandbox?.cleanup()]);
  });

  it("uploads every allotment to the first repository", () => {
    expect(first.build.allotments).toHaveLength(5);
    expect(first.push.blobsUploaded).toBe(first.push.blobsTotal);
    expect(first.push.bytesUploaded).toBeGreaterThan(WEIGHTS_BYTES);
  });

  it("mounts every allotment into a second repository: 0 allotment bytes uploaded", async () => {
    await requestsSince(registry, 0);
    const mark = logMark(registry);
    const second = await sandbox.json<BuildPushOutput>(
      ["build", "scratch", `${registry.host}/e2e/second:v1`, "--push"],
      {
        cwd: model,
      },
    );
    const allotments = second.build.allotments;
    expect(allotments.map((a) => a.digest)).toEqual(first.build.allotments.map((a) => a.digest));
    // Everything the first push sent is mounted; what differs (the image name is in the
    // manifests' annotations) is a few kB of JSON.
    expect(second.push.blobsMounted).toBeGreaterThanOrEqual(allotments.length);
    expect(second.push.blobsMounted + second.push.blobsUploaded).toBe(second.push.blobsTotal);
    expect(second.push.bytesUploaded).toBeLessThan(20_000);

    // The registry's side: mounts answered 201, no chunk sent, and the new repository serves
    // every allotment whole.
    const requests = await requestsSince(registry, mark);
    const toSecond = requests.filter((r) => r.path.startsWith("/v2/e2e/second/blobs/uploads/"));
    expect(toSecond.filter((r) => r.method === "POST" && r.status === 201).length).toBe(second.push.blobsTotal);
    expect(requests.filter((r) => r.method === "PATCH" || (r.method === "PUT" && r.path.includes("/blobs/")))).toEqual(
      [],
    );
    for (const a of allotments) {
      expect(await headBlob(registry.url, "e2e/second", a.digest)).toEqual({ status: 200, size: a.size });
      const got = await fetchBlobDigest(registry.url, "e2e/second", a.digest);
      expect({ status: got.status, digest: got.digest, bytes: got.bytes }).toEqual({
        status: 200,
        digest: a.digest,
        bytes: a.size,
      });
    }
  });

  it("inspect --remote reads the registry and says so, even though the local store has the image", async () => {
    const r = await sandbox.json<InspectResult>(["inspect", "--remote", `${registry.host}/e2e/second:v1--weights`]);
    expect(r.origin).toEqual({ kind: "registry", location: registry.url });
    expect(r.requested?.allotments).toEqual([
      { row: 1, col: 0 },
      { row: 1, col: 1 },
    ]);
    const sizes = first.build.allotments.filter((a) => a.row === 1).reduce((n, a) => n + a.size, 0);
    expect(r.requested?.bytes).toBe(sizes);
    // Paths would take downloading the allotments: a remote inspect does not claim them.
    expect(r.cells.every((c) => c.paths === undefined)).toBe(true);
    const human = await sandbox.run(["inspect", "--remote", `${registry.host}/e2e/second:v1`]);
    expect(human.stdout.split("\n")[0]).toBe(`read from the registry ${registry.url}`);
  });

  it("says which repository each allotment was mounted from", async () => {
    const target = `${registry.host}/e2e/third:v1`;
    const built = await sandbox.run(["build", "scratch", target], { cwd: model });
    expect(built.code).toBe(0);
    const pushed = await sandbox.run(["push", target]);
    expect(pushed.code).toBe(0);
    for (const a of first.build.allotments) {
      const short = a.digest.slice(0, "sha256:".length + 12);
      expect(pushed.stderr).toMatch(new RegExp(`^mounted  ${short}… .+ from e2e/(first|second)$`, "m"));
      expect(pushed.stderr).not.toMatch(new RegExp(`^uploaded ${short}`, "m"));
    }
    const report = JSON.parse((await sandbox.run(["push", target, "--json"])).stdout) as PushReport;
    expect(report).toMatchObject({ blobsUploaded: 0, bytesUploaded: 0 });
  });
});
