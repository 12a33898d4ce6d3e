import { describe, expect, it } from "vitest";
import { MediaType } from "../../core/oci/media-types.ts";
import { anImage, anIndex } from "../helpers/images/builder.ts";
import { digestOf, randomBytes } from "./helpers/bytes.ts";
import { call, expectOciError, registry, uniqueRepo, worker } from "./helpers/registry.ts";

const SBOM = "application/vnd.example.sbom.v1+json";
const SIGNATURE = "application/vnd.example.signature.v1+json";

/** The path and query a Link header points to, with its rel. */
function linkTarget(res: Response): { path: string; rel: string } | null {
  const link = res.headers.get("Link");
  if (link === null) return null;
  const m = /^<([^>]+)>; rel="([^"]+)"$/.exec(link);
  expect(m, `an RFC 5988 Link header, got ${link}`).not.toBeNull();
  return { path: m![1]!, rel: m![2]! };
}

describe("GET /v2/<name>/tags/list", () => {
  it("lists every tag in lexical order", async () => {
    const repo = uniqueRepo("listing");
    const img = await anImage().randomLayers(1).pushTo(worker, repo, "v2");
    for (const tag of ["latest", "v1", "V0", "1.0"]) await registry.pushManifest(repo, tag, img.bytes, img.mediaType);
    const res = await registry.tags(repo);
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
    expect(res.headers.get("Link")).toBeNull();
    expect(await res.json()).toEqual({ name: repo, tags: ["1.0", "V0", "latest", "v1", "v2"] });
  });

  it("pages with n and last, linking each page to the next until the end", async () => {
    const repo = uniqueRepo("listing");
    const img = await anImage().randomLayers(1).pushTo(worker, repo, "a");
    for (const tag of ["b", "c", "d", "e"]) await registry.pushManifest(repo, tag, img.bytes, img.mediaType);

    const first = await registry.tags(repo, "?n=2");
    expect(await first.json()).toEqual({ name: repo, tags: ["a", "b"] });
    expect(linkTarget(first)).toEqual({ path: `/v2/${repo}/tags/list?n=2&last=b`, rel: "next" });

    const second = await call(linkTarget(first)!.path);
    expect(await second.json()).toEqual({ name: repo, tags: ["c", "d"] });
    expect(linkTarget(second)).toEqual({ path: `/v2/${repo}/tags/list?n=2&last=d`, rel: "next" });

    const third = await call(linkTarget(second)!.path);
    expect(await third.json()).toEqual({ name: repo, tags: ["e"] });
    expect(third.headers.get("Link")).toBeNull();
  });

  it("starts after `last` even when `last` is not a tag", async () => {
    const repo = uniqueRepo("listing");
    const img = await anImage().randomLayers(1).pushTo(worker, repo, "alpha");
    for (const tag of ["beta", "gamma"]) await registry.pushManifest(repo, tag, img.bytes, img.mediaType);
    expect(await (await registry.tags(repo, "?last=b")).json()).toEqual({ name: repo, tags: ["beta", "gamma"] });
    expect(await (await registry.tags(repo, "?last=gamma")).json()).toEqual({ name: repo, tags: [] });
  });

  it("does not link a next page when the last page is exactly full", async () => {
    const repo = uniqueRepo("listing");
    const img = await anImage().randomLayers(1).pushTo(worker, repo, "a");
    await registry.pushManifest(repo, "b", img.bytes, img.mediaType);
    const res = await registry.tags(repo, "?n=2");
    expect(await res.json()).toEqual({ name: repo, tags: ["a", "b"] });
    expect(res.headers.get("Link")).toBeNull();
  });

  it("answers n=0 with an empty list", async () => {
    const repo = uniqueRepo("listing");
    await anImage().randomLayers(1).pushTo(worker, repo, "a");
    expect(await (await registry.tags(repo, "?n=0")).json()).toEqual({ name: repo, tags: [] });
  });

  it("lists no tags for a repository that holds only untagged content", async () => {
    const repo = uniqueRepo("listing");
    await registry.pushBlob(repo, randomBytes(32));
    expect(await (await registry.tags(repo)).json()).toEqual({ name: repo, tags: [] });
  });

  it("is 404 NAME_UNKNOWN for a repository that does not exist", async () => {
    const repo = uniqueRepo("listing");
    const err = await expectOciError(await registry.tags(repo), 404, "NAME_UNKNOWN");
    expect(err.detail).toEqual({ name: repo });
  });

  it("refuses a malformed n with 400 PAGINATION_NUMBER_INVALID", async () => {
    const repo = uniqueRepo("listing");
    await anImage().randomLayers(1).pushTo(worker, repo, "a");
    for (const n of ["-1", "abc", "1e3", "99999999999"]) {
      await expectOciError(await registry.tags(repo, `?n=${n}`), 400, "PAGINATION_NUMBER_INVALID");
    }
  });
});

describe("GET /v2/_catalog", () => {
  it("lists repositories in lexical order, page by page with Link headers", async () => {
    // Other tests add repositories too; this one walks the catalog from just before its own names.
    const prefix = uniqueRepo("catalog");
    const names = [`${prefix}/one`, `${prefix}/three`, `${prefix}/two`];
    for (const name of names) await registry.pushBlob(name, randomBytes(16));

    const first = await call(`/v2/_catalog?n=2&last=${prefix}`);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ repositories: names.slice(0, 2) });
    expect(linkTarget(first)).toEqual({ path: `/v2/_catalog?n=2&last=${encodeURIComponent(names[1]!)}`, rel: "next" });

    const second = await call(linkTarget(first)!.path);
    const { repositories } = (await second.json()) as { repositories: string[] };
    expect(repositories[0]).toBe(names[2]);
    expect(repositories.length).toBeLessThanOrEqual(2);
  });

  it("includes a repository once its first manifest or blob is pushed", async () => {
    const repo = uniqueRepo("catalog");
    const before = (await (await call(`/v2/_catalog?n=10000`)).json()) as { repositories: string[] };
    expect(before.repositories).not.toContain(repo);
    await anImage().randomLayers(1).pushTo(worker, repo, "v1");
    const after = (await (await call(`/v2/_catalog?n=10000`)).json()) as { repositories: string[] };
    expect(after.repositories).toContain(repo);
    expect([...after.repositories].sort()).toEqual(after.repositories);
  });

  it("refuses a malformed n with 400 PAGINATION_NUMBER_INVALID", async () => {
    await expectOciError(await call("/v2/_catalog?n=x"), 400, "PAGINATION_NUMBER_INVALID");
  });
});

describe("GET /v2/<name>/referrers/<digest>", () => {
  it("lists the manifests that name a subject, as an OCI index of descriptors", async () => {
    const repo = uniqueRepo("referrers");
    const app = await anImage().randomLayers(1).pushTo(worker, repo, "app");
    const sbom = await anImage()
      .artifactType(SBOM)
      .subject(app.descriptor)
      .manifestAnnotations({ "org.example.kind": "sbom" })
      .pushTo(worker, repo);
    // An artifact typed only by its config media type, as before artifactType existed.
    const signature = await anImage()
      .configMediaType(SIGNATURE)
      .randomLayers(1)
      .subject(app.descriptor)
      .pushTo(worker, repo);
    const bundle = await anIndex().of(app).artifactType(SBOM).subject(app.descriptor).pushTo(worker, repo);

    const res = await call(`/v2/${repo}/referrers/${app.digest}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe(MediaType.OciIndex);
    expect(res.headers.get("OCI-Filters-Applied")).toBeNull();
    const expected = [
      {
        mediaType: MediaType.OciManifest,
        digest: sbom.digest,
        size: sbom.bytes.byteLength,
        artifactType: SBOM,
        annotations: { "org.example.kind": "sbom" },
      },
      {
        mediaType: MediaType.OciManifest,
        digest: signature.digest,
        size: signature.bytes.byteLength,
        artifactType: SIGNATURE,
      },
      { mediaType: MediaType.OciIndex, digest: bundle.digest, size: bundle.bytes.byteLength, artifactType: SBOM },
    ].sort((a, b) => (a.digest < b.digest ? -1 : 1));
    expect(await res.json()).toEqual({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: expected });
  });

  it("filters by artifactType and says so in OCI-Filters-Applied", async () => {
    const repo = uniqueRepo("referrers");
    const app = await anImage().randomLayers(1).pushTo(worker, repo, "app");
    const sbom = await anImage().artifactType(SBOM).subject(app.descriptor).pushTo(worker, repo);
    await anImage().artifactType(SIGNATURE).subject(app.descriptor).pushTo(worker, repo);
    const res = await call(`/v2/${repo}/referrers/${app.digest}?artifactType=${encodeURIComponent(SBOM)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("OCI-Filters-Applied")).toBe("artifactType");
    const body = (await res.json()) as { manifests: { digest: string; artifactType: string }[] };
    expect(body.manifests.map((d) => [d.digest, d.artifactType])).toEqual([[sbom.digest, SBOM]]);
  });

  it("lists referrers pushed before their subject", async () => {
    const repo = uniqueRepo("referrers");
    const app = await anImage().randomLayers(1).build();
    const sbom = await anImage().artifactType(SBOM).subject(app.descriptor).pushTo(worker, repo);
    const res = await call(`/v2/${repo}/referrers/${app.digest}`);
    const body = (await res.json()) as { manifests: { digest: string }[] };
    expect(body.manifests.map((d) => d.digest)).toEqual([sbom.digest]);
  });

  it("drops a referrer once it is deleted", async () => {
    const repo = uniqueRepo("referrers");
    const app = await anImage().randomLayers(1).pushTo(worker, repo, "app");
    const sbom = await anImage().artifactType(SBOM).subject(app.descriptor).pushTo(worker, repo);
    expect((await registry.manifest(repo, sbom.digest, { method: "DELETE" })).status).toBe(202);
    const body = (await (await call(`/v2/${repo}/referrers/${app.digest}`)).json()) as { manifests: unknown[] };
    expect(body.manifests).toEqual([]);
  });

  it("answers an empty index for a subject nothing refers to", async () => {
    const repo = uniqueRepo("referrers");
    const unknown = await digestOf(randomBytes(32));
    const res = await call(`/v2/${repo}/referrers/${unknown}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe(MediaType.OciIndex);
    expect(await res.json()).toEqual({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] });
  });

  it("does not list referrers from another repository", async () => {
    const app = await anImage().randomLayers(1).build();
    await anImage().artifactType(SBOM).subject(app.descriptor).pushTo(worker, uniqueRepo("referrers"));
    const body = (await (await call(`/v2/${uniqueRepo("referrers")}/referrers/${app.digest}`)).json()) as {
      manifests: unknown[];
    };
    expect(body.manifests).toEqual([]);
  });

  it("refuses a malformed subject digest with 400 DIGEST_INVALID", async () => {
    await expectOciError(await call(`/v2/${uniqueRepo("referrers")}/referrers/sha256:nothex`), 400, "DIGEST_INVALID");
  });
});
