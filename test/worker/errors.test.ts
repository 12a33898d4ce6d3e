/**
 * Client mistakes: each gets the spec's error code and a 4xx status as OCI error JSON, never a 5xx,
 * and no crafted name reaches another repository's or the registry's internal keys.
 */
import { describe, expect, it } from "vitest";
import { hexOf } from "../../core/oci/digest.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import { keys } from "../../worker/storage/keys.ts";
import { anImage } from "../helpers/images/builder.ts";
import { digestOf, MiB, randomBytes, utf8 } from "./helpers/bytes.ts";
import {
  bytesOf,
  call,
  expectOciError,
  expectStatus,
  registry,
  uniqueRepo,
  withParams,
  worker,
} from "./helpers/registry.ts";
import { keysUnder } from "./helpers/storage.ts";

/** Well-formed digests of algorithms the registry does not compute (it computes sha256 and sha512: digests-sha512.test.ts). */
const UNSUPPORTED_DIGESTS = [`md5:${"ab".repeat(16)}`, `sha384:${"cd".repeat(48)}`, `sha3-256:${"ef".repeat(32)}`];
const UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000";

/** One request of every kind a repository name appears in. */
function everyEndpoint(name: string): [string, RequestInit?][] {
  const digest = `sha256:${"0".repeat(64)}`;
  return [
    [`/v2/${name}/tags/list`],
    [`/v2/${name}/manifests/latest`],
    [`/v2/${name}/manifests/latest`, { method: "HEAD" }],
    [`/v2/${name}/manifests/latest`, { method: "PUT", headers: { "Content-Type": MediaType.OciManifest }, body: "{}" }],
    [`/v2/${name}/manifests/latest`, { method: "DELETE" }],
    [`/v2/${name}/blobs/${digest}`],
    [`/v2/${name}/blobs/${digest}`, { method: "DELETE" }],
    [`/v2/${name}/blobs/uploads/`, { method: "POST" }],
    [`/v2/${name}/blobs/uploads/?digest=${digest}`, { method: "POST", body: "x" }],
    [`/v2/${name}/blobs/uploads/${UNKNOWN_UUID}`],
    [`/v2/${name}/blobs/uploads/${UNKNOWN_UUID}`, { method: "PATCH", body: "x" }],
    [`/v2/${name}/referrers/${digest}`],
  ];
}

describe("repository names", () => {
  // A literal `a/../b` never reaches a Worker: URL parsing (the client's and workerd's) folds dot
  // segments, `%2e%2e` included. What can arrive is `..` inside a component or behind an encoded slash.
  const invalid: [string, string][] = [
    ["an uppercase name", "Library/alpine"],
    ["`..` inside a component", "a/..b"],
    ["a trailing `..`", "a.."],
    ["an encoded slash", "a%2fb"],
    ["an encoded slash in upper case", "a%2Fb"],
    ["an encoded `..` path", "a%2f..%2fb"],
    ["an empty component", "a//b"],
    ["a leading separator", "-a/b"],
    ["an internal-looking component", "x/_uploads"],
    ["a name that starts with an underscore", "_blobs/x"],
    ["a name over 255 characters", `${"a".repeat(200)}/${"b".repeat(56)}`],
    ["a space", "a%20b"],
  ];

  for (const [what, name] of invalid) {
    it(`refuses ${what} with 400 NAME_INVALID on every endpoint`, async () => {
      for (const [path, init] of everyEndpoint(name)) {
        const res = await call(path, init);
        if (init?.method === "HEAD") {
          expect(res.status, `HEAD ${path}`).toBe(400);
          continue;
        }
        await expectOciError(res, 400, "NAME_INVALID");
      }
    });
  }

  it("accepts a name of exactly 255 characters", async () => {
    const name = `${"a".repeat(200)}/${"b".repeat(54)}`;
    expect(name).toHaveLength(255);
    const bytes = randomBytes(16);
    const digest = await registry.pushBlob(name, bytes);
    expect(await bytesOf(await registry.blob(name, digest))).toEqual(bytes);
  });

  it("keeps repositories named like storage prefixes apart from the registry's own keys", async () => {
    const bytes = randomBytes(64);
    const digest = await digestOf(bytes);
    const names = ["x/uploads", "blobs/sha256", "uploads", "catalog", "repos/x", "data", `${uniqueRepo("x")}/gc`];
    for (const name of names) await registry.pushBlob(name, bytes);
    for (const name of names) expect(await bytesOf(await registry.blob(name, digest))).toEqual(bytes);
    // The bytes once under blobs/, and one link inside each repository's own namespace: nothing else.
    const touched = (await keysUnder("")).filter((k) => k.includes(hexOf(digest)));
    expect(touched.sort()).toEqual([keys.blob(digest), ...names.map((n) => keys.blobLink(n, digest))].sort());
  });
});

describe("tags", () => {
  it("accepts a tag of 128 characters and refuses one of 129 at push with 400 TAG_INVALID", async () => {
    const repo = uniqueRepo("errors");
    const img = await anImage().randomLayers(1).pushTo(worker, repo);
    await registry.pushManifest(repo, "t".repeat(128), img.bytes, img.mediaType);
    await expectOciError(
      await registry.putManifest(repo, "t".repeat(129), img.bytes, img.mediaType),
      400,
      "TAG_INVALID",
    );
    // A pull by it is a manifest that cannot exist: 404, the only answer spec end-3 allows.
    await expectOciError(await registry.manifest(repo, "t".repeat(129)), 404, "MANIFEST_UNKNOWN");
    expect(await (await registry.tags(repo)).json()).toEqual({ name: repo, tags: ["t".repeat(128)] });
  });

  it("refuses tags outside the grammar with 400 TAG_INVALID", async () => {
    const repo = uniqueRepo("errors");
    const img = await anImage().randomLayers(1).pushTo(worker, repo);
    for (const tag of [".hidden", "-dash", "a%2fb", "a+b", "caf%C3%A9"]) {
      await expectOciError(await registry.putManifest(repo, tag, img.bytes, img.mediaType), 400, "TAG_INVALID");
    }
  });
});

describe("digests", () => {
  const malformed = [
    "sha256:abc",
    `sha256:${"A".repeat(64)}`,
    `sha256:${"g".repeat(64)}`,
    "nodigest",
    "sha256:",
    ":abc",
  ];

  it("refuses malformed blob digests with 400 DIGEST_INVALID", async () => {
    const repo = uniqueRepo("errors");
    for (const d of malformed) {
      await expectOciError(await registry.blob(repo, d), 400, "DIGEST_INVALID");
      await expectOciError(await registry.blob(repo, d, { method: "DELETE" }), 400, "DIGEST_INVALID");
    }
  });

  it("refuses malformed upload and mount digests with 400 DIGEST_INVALID", async () => {
    const repo = uniqueRepo("errors");
    for (const d of malformed.filter((x) => x !== "nodigest")) {
      await expectOciError(
        await call(`/v2/${repo}/blobs/uploads/?digest=${d}`, { method: "POST", body: "abc" }),
        400,
        "DIGEST_INVALID",
      );
      await expectOciError(
        await call(`/v2/${repo}/blobs/uploads/?mount=${d}`, { method: "POST" }),
        400,
        "DIGEST_INVALID",
      );
      const { location } = await registry.openUpload(repo);
      await expectOciError(await call(withParams(location, { digest: d }), { method: "PUT" }), 400, "DIGEST_INVALID");
    }
  });

  it("refuses a malformed manifest digest reference with 400 DIGEST_INVALID", async () => {
    const repo = uniqueRepo("errors");
    for (const d of malformed.filter((x) => x.includes(":"))) {
      await expectOciError(await registry.manifest(repo, d), 400, "DIGEST_INVALID");
    }
  });

  // 415 is about request bodies; a digest the registry cannot compute is a bad digest (spec: uploads
  // answer 400 DIGEST_INVALID), and reads answer the same.
  for (const digest of UNSUPPORTED_DIGESTS) {
    it(`answers ${digest.split(":")[0]} digests with 400 DIGEST_INVALID wherever a digest is taken, never 415`, async () => {
      const repo = uniqueRepo("errors");
      const img = await anImage().randomLayers(1).pushTo(worker, repo, "v1");
      const expectUnsupported = async (res: Response) => {
        const error = await expectOciError(res, 400, "DIGEST_INVALID");
        expect(error.message).toMatch(/unsupported digest algorithm/);
        expect(error.detail).toMatchObject({ digest });
      };
      await expectUnsupported(await registry.blob(repo, digest));
      expect((await registry.blob(repo, digest, { method: "HEAD" })).status).toBe(400);
      await expectUnsupported(await registry.blob(repo, digest, { method: "DELETE" }));
      await expectUnsupported(
        await call(`/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: "POST", body: "abc" }),
      );
      await expectUnsupported(await call(`/v2/${repo}/blobs/uploads/?mount=${digest}`, { method: "POST" }));
      await expectUnsupported(
        await call(`/v2/${repo}/blobs/uploads/?mount=${digest}&from=${repo}`, { method: "POST" }),
      );
      const { location } = await registry.openUpload(repo);
      await expectUnsupported(await call(withParams(location, { digest }), { method: "PUT", body: "abc" }));
      await expectUnsupported(await call(`/v2/${repo}/referrers/${digest}`));
      await expectUnsupported(await registry.manifest(repo, digest));
      expect((await registry.manifest(repo, digest, { method: "HEAD" })).status).toBe(400);
      await expectUnsupported(await registry.putManifest(repo, digest, img.bytes, img.mediaType));
      await expectUnsupported(await registry.manifest(repo, digest, { method: "DELETE" }));
    });
  }
});

describe("upload sessions", () => {
  it("answers an unknown session with 404 BLOB_UPLOAD_UNKNOWN on every method", async () => {
    const repo = uniqueRepo("errors");
    await registry.pushBlob(repo, randomBytes(8));
    const digest = await digestOf(randomBytes(8));
    for (const uuid of [UNKNOWN_UUID, "not-a-uuid", "x".repeat(300)]) {
      const path = `/v2/${repo}/blobs/uploads/${uuid}`;
      await expectOciError(await call(path), 404, "BLOB_UPLOAD_UNKNOWN");
      await expectOciError(await call(path, { method: "PATCH", body: "abc" }), 404, "BLOB_UPLOAD_UNKNOWN");
      await expectOciError(
        await call(`${path}?digest=${digest}`, { method: "PUT", body: "abc" }),
        404,
        "BLOB_UPLOAD_UNKNOWN",
      );
      await expectOciError(await call(path, { method: "DELETE" }), 404, "BLOB_UPLOAD_UNKNOWN");
    }
  });
});

describe("unknown endpoints", () => {
  for (const [path, method] of [
    ["/", "GET"],
    ["/v3/", "GET"],
    ["/v2/repo/unknown/thing", "GET"],
    ["/v2/repo/blobs", "GET"],
    ["/v2/repo/manifests/", "GET"],
  ] as const) {
    it(`answers ${method} ${path} with 404 as OCI error JSON`, async () => {
      await expectOciError(await call(path, { method }), 404, "NOT_FOUND");
    });
  }
  for (const [path, method] of [
    ["/v2/repo/tags/list", "PUT"],
    ["/v2/_catalog", "DELETE"],
    ["/v2/repo/blobs/uploads/", "GET"],
    [`/v2/repo/blobs/sha256:${"0".repeat(64)}`, "PUT"],
    ["/v2/repo/manifests/v1", "POST"],
    [`/v2/repo/referrers/sha256:${"0".repeat(64)}`, "DELETE"],
  ] as const) {
    it(`answers ${method} ${path} with 405 METHOD_UNKNOWN`, async () => {
      await expectOciError(await call(path, { method }), 405, "METHOD_UNKNOWN");
    });
  }
});

describe("nothing a client sends is a 5xx", () => {
  const repo = uniqueRepo("errors");
  const requests: [string, string, RequestInit?][] = [
    [
      "a manifest over the size limit",
      `/v2/${repo}/manifests/big`,
      { method: "PUT", headers: { "Content-Type": MediaType.OciManifest }, body: new Uint8Array(5 * MiB) },
    ],
    ["a manifest with a body of nulls", `/v2/${repo}/manifests/nul`, { method: "PUT", body: new Uint8Array(64) }],
    ["a manifest without Content-Type or mediaType", `/v2/${repo}/manifests/x`, { method: "PUT", body: "{}" }],
    [
      "an index with a descriptor that is not an object",
      `/v2/${repo}/manifests/x`,
      {
        method: "PUT",
        headers: { "Content-Type": MediaType.OciIndex },
        body: JSON.stringify({ schemaVersion: 2, manifests: [1] }),
      },
    ],
    ["a nonsense Range", `/v2/${repo}/blobs/sha256:${"0".repeat(64)}`, { headers: { Range: "bytes=--" } }],
    ["a huge n", `/v2/${repo}/tags/list?n=999999999`],
    [
      "a mount from an invalid name",
      `/v2/${repo}/blobs/uploads/?mount=sha256:${"0".repeat(64)}&from=BAD..NAME`,
      { method: "POST" },
    ],
    ["a referrers filter on a bad name", `/v2/A/referrers/sha256:${"0".repeat(64)}?artifactType=x`],
    ["a catalog with last past everything", `/v2/_catalog?last=zzzzzzzz`],
    ["an upload POST with a bogus digest and no body", `/v2/${repo}/blobs/uploads/?digest=zzz`, { method: "POST" }],
  ];

  for (const [what, path, init] of requests) {
    it(`answers ${what} below 500`, async () => {
      const res = await call(path, init);
      expect(res.status, `${path}: ${await res.clone().text()}`).toBeLessThan(500);
      if (res.status >= 400) {
        expect(res.headers.get("Content-Type")).toBe("application/json");
        const body = (await res.json()) as { errors: { code: string }[] };
        expect(body.errors[0]!.code).toMatch(/^[A-Z_]+$/);
      }
    });
  }

  it("answers an oversized manifest with 413 and stores nothing", async () => {
    const res = await registry.putManifest(
      repo,
      "huge",
      utf8(`{"pad":"${"x".repeat(5 * MiB)}"}`),
      MediaType.OciManifest,
    );
    await expectOciError(res, 413, "PAYLOAD_TOO_LARGE");
    await expectOciError(await registry.manifest(repo, "huge"), 404, "MANIFEST_UNKNOWN");
  });

  it("leaves an image pushed before intact after all of it", async () => {
    const intact = uniqueRepo("errors");
    const img = await anImage().randomLayers(2).pushTo(worker, intact, "v1");
    for (const [, path, init] of requests) await (await call(path.replace(repo, intact), init)).arrayBuffer();
    const res = await registry.manifest(intact, "v1");
    await expectStatus(res, 200);
    expect(await bytesOf(res)).toEqual(img.bytes);
    for (const b of img.blobs) expect(await bytesOf(await registry.blob(intact, b.descriptor.digest))).toEqual(b.bytes);
  });
});
