/**
 * Mirrors in workerd, where no upstream is needed: a broken UPSTREAMS setting refuses exactly the
 * requests under its prefixes, a mirrored repository is read-only, and the collector forgets a
 * mirrored tag nobody asked for within UPSTREAM_CACHE_TTL_SECONDS, and what only it kept.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Digest } from "../../core/oci/digest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { collect } from "../../worker/gc/collector.ts";
import { DEFAULTS, type GcConfig } from "../../worker/config.ts";
import { keys } from "../../worker/storage/keys.ts";
import { anImage } from "../helpers/images/builder.ts";
import { workerWith } from "./auth-support.ts";
import { worker } from "./helpers/registry.ts";

const ACCEPT = [MediaType.OciIndex, MediaType.OciManifest].join(", ");
const DAY = 24 * 3600_000;

async function errorOf(res: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await res.json()) as { errors: { code: string; message: string }[] };
  return { status: res.status, code: body.errors[0]!.code, message: body.errors[0]!.message };
}

describe("mirrored repositories", () => {
  it("with a setting that names an unset secret, refuses requests under its prefix with 503, and only those", async () => {
    const broken = workerWith({
      UPSTREAMS: JSON.stringify({ "lab/": { url: "http://127.0.0.1:9", credentials: "NOPE" } }),
    });
    expect(
      await errorOf(await broken("/v2/lab/team/model/manifests/v1", { headers: { Accept: ACCEPT } })),
    ).toMatchObject({
      status: 503,
      code: "UNAVAILABLE",
      message:
        "the registry's UPSTREAMS setting is malformed: lab/.credentials names NOPE, which is not set to user:password",
    });
    const own = await anImage().randomLayers(1).pushTo(worker, "local/app", "v1");
    const res = await broken("/v2/local/app/manifests/v1", { headers: { Accept: ACCEPT } });
    expect(res.status).toBe(200);
    expect(res.headers.get("docker-content-digest")).toBe(own.digest);
  });

  it("refuses pushes and deletes under a mirrored prefix with 403 DENIED, saying whose mirror it is", async () => {
    const mirror = workerWith({ UPSTREAMS: JSON.stringify({ "lab/": { url: "http://127.0.0.1:9", prefix: "org/" } }) });
    for (const [method, path] of [
      ["POST", "/v2/lab/team/model/blobs/uploads/"],
      ["PUT", "/v2/lab/team/model/manifests/v1"],
      ["DELETE", "/v2/lab/team/model/manifests/v1"],
      ["DELETE", `/v2/lab/team/model/blobs/sha256:${"a".repeat(64)}`],
    ] as const) {
      expect(await errorOf(await mirror(path, { method }))).toEqual({
        status: 403,
        code: "DENIED",
        message: "lab/team/model is a read-only mirror of org/team/model on 127.0.0.1:9",
      });
    }
  });

  it("forgets a mirrored tag not asked of its upstream for UPSTREAM_CACHE_TTL_SECONDS, and collects what only it kept", async () => {
    // A mirrored image as a pull through the mirror leaves it: content, and a tag with its fetch time.
    const img = await anImage().randomLayers(1).pushTo(worker, "mirr/team/app", "fresh");
    await env.BLOBS.put(keys.tag("mirr/team/app", "stale"), img.digest, {
      customMetadata: { digest: img.digest, fetched: String(Date.now()) },
    });
    await env.BLOBS.delete(keys.tag("mirr/team/app", "fresh"));
    const config: GcConfig = {
      graceMs: 0,
      uploadTtlMs: DEFAULTS.uploadTtlSeconds * 1000,
      derivedTtlMs: DEFAULTS.gcDerivedTtlSeconds * 1000,
      maxOperations: 100_000,
      upstreamCacheTtlMs: 7 * DAY,
      mirrorPrefixes: ["mirr/"],
    };
    // A day later the tag is kept; eight days later it is forgotten, and the image with it.
    const kept = await collect(env.BLOBS, config, { now: Date.now() + DAY });
    expect(kept.freed.mirrorTags.objects).toBe(0);
    expect(await env.BLOBS.head(keys.manifest("mirr/team/app", img.digest as Digest))).not.toBeNull();
    const forgot = await collect(env.BLOBS, config, { now: Date.now() + 8 * DAY });
    expect(forgot.freed.mirrorTags.objects).toBe(1);
    expect(await env.BLOBS.head(keys.tag("mirr/team/app", "stale"))).toBeNull();
    expect(await env.BLOBS.head(keys.manifest("mirr/team/app", img.digest as Digest))).toBeNull();
  });
});
