/**
 * Auth with real clients against `wrangler dev` with AUTH_MODE=token: skopeo pushes and pulls
 * with `--creds` through the token flow and is refused without them (or with a pull-only user's
 * when pushing); containerd pulls a 2DFS partition with `ctr --user`. Password hashes come from
 * scripts/hash-password.ts, as a user would make them.
 *
 * The 2DFS image is pushed while the registry runs without auth, then the registry is restarted
 * on the same storage with auth on, as when auth is turned on for a registry already in use.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { anImage } from "../helpers/images/builder.ts";
import { writeImage, type WrittenImage } from "../helpers/images/layout.ts";
import { overHttp, push } from "../helpers/images/push.ts";
import { expectedFiles } from "../helpers/images/selection.ts";
import { startContainerd, type Containerd } from "../helpers/containerd.ts";
import { REPO_ROOT, run } from "../helpers/process.ts";
import * as skopeo from "../helpers/skopeo.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";

const PASSWORDS = { reader: "reader pw", pusher: "pusher:pw" };
const MODEL = "team-a/model";
const PLATFORM = `linux/${process.arch === "x64" ? "amd64" : process.arch}`;

async function hashOf(password: string): Promise<string> {
  const { stdout } = await run(process.execPath, [join(REPO_ROOT, "scripts", "hash-password.ts")], { input: password });
  return stdout.trim();
}

describe("auth with skopeo and containerd through wrangler dev", () => {
  let registry: Registry;
  let work: string;
  let image: WrittenImage;
  let model: WrittenImage;
  let persistDir: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "2dfs-e2e-auth-"));
    persistDir = join(work, "state");
    let openRegistry: Registry;
    [openRegistry, image, model] = await Promise.all([
      startRegistry({ persistDir }),
      writeImage(join(work, "image"), anImage().platforms([PLATFORM]).randomLayers(2, 300_000), "v1"),
      writeImage(
        join(work, "model"),
        anImage()
          .randomLayers(2, 32 * 1024)
          .name(MODEL)
          .platforms([PLATFORM])
          .grid(2, 2)
          .allotmentBytes(16 * 1024),
      ),
    ]);
    try {
      await push(overHttp(openRegistry.url), MODEL, model, "v1");
    } finally {
      await openRegistry.stop();
    }
    const config = {
      users: {
        reader: { password: await hashOf(PASSWORDS.reader) },
        pusher: { password: await hashOf(PASSWORDS.pusher) },
      },
      rules: [{ repos: "team-a/*", pull: ["reader"], push: ["pusher"] }],
    };
    registry = await startRegistry({
      persistDir,
      vars: {
        AUTH_MODE: "token",
        AUTH_CONFIG: JSON.stringify(config),
        TOKEN_SIGNING_KEY: "e2e-signing-key-0123456789abcdefghij",
      },
    });
  });

  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  const creds = (user: keyof typeof PASSWORDS) => `${user}:${PASSWORDS[user]}`;
  const failure = async (p: Promise<unknown>): Promise<string> => {
    const e = await p.then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(e, "the command should have failed").toBeInstanceOf(Error);
    return e!.message;
  };

  it("answers /v2/ with a Bearer challenge that points at /token", async () => {
    const res = await fetch(`${registry.url}/v2/`);
    expect(res.status).toBe(401);
    expect(res.headers.get("WWW-Authenticate")).toBe(`Bearer realm="${registry.url}/token",service="${registry.host}"`);
  });

  it("refuses a skopeo push without credentials", async () => {
    const message = await failure(skopeo.copy(image.ref, `docker://${registry.host}/team-a/app:v1`));
    expect(message).toMatch(/authentication required|unauthorized/i);
  });

  it("refuses a skopeo push by a pull-only user as denied", async () => {
    const message = await failure(
      skopeo.copy(image.ref, `docker://${registry.host}/team-a/app:v1`, { creds: creds("reader") }),
    );
    expect(message).toMatch(/denied/i);
  });

  it("pushes with skopeo --creds, then pulls the same bytes back", async () => {
    const dest = `docker://${registry.host}/team-a/app:v1`;
    await skopeo.copy(image.ref, dest, { creds: creds("pusher"), preserveDigests: true });
    const raw = await skopeo.inspectRaw(dest, { creds: creds("reader") });
    expect(raw).toEqual(await readFile(join(image.dir, "blobs", "sha256", image.digest.slice("sha256:".length))));
    const back = join(work, "back");
    await skopeo.copy(dest, `oci:${back}:v1`, { creds: creds("reader"), preserveDigests: true });
    expect(await skopeo.inspectRaw(`oci:${back}:v1`)).toEqual(raw);
    expect(await skopeo.listTags(`docker://${registry.host}/team-a/app`, { creds: creds("pusher") })).toEqual(["v1"]);
  });

  it("refuses a skopeo pull without credentials", async () => {
    const message = await failure(skopeo.inspectRaw(`docker://${registry.host}/team-a/app:v1`));
    expect(message).toMatch(/authentication required|unauthorized/i);
  });

  describe("containerd", () => {
    let containerd: Containerd;
    beforeAll(async () => {
      containerd = await startContainerd();
    });
    afterAll(async () => {
      await containerd?.stop();
    });

    it("pulls a 2DFS partition with ctr --user, and is refused without it", async () => {
      const ref = `${registry.host}/${MODEL}:v1--0.0.0.1`;
      const refused = await containerd.ctr(["image", "pull", "--plain-http", "--platform", PLATFORM, ref]).then(
        () => "pulled",
        (e: Error) => e.message,
      );
      expect(refused).toMatch(/401|unauthorized/i);
      await containerd.pull(ref, { platform: PLATFORM, user: creds("reader") });
      expect(await containerd.files(ref, PLATFORM)).toEqual(
        expectedFiles(model.platforms[0]!, [
          [0, 0],
          [0, 1],
        ]),
      );
    });
  });
});
