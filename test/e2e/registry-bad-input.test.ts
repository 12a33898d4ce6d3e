/**
 * Malformed and hostile requests against the registry as `npm start` serves it, one table row each: path tricks in
 * names, bad tags and digests, unknown and stale upload sessions, out-of-order chunks, malformed
 * manifests, truncated and oversized bodies. Every row gets a 4xx with the OCI error code the
 * spec names (never a 5xx), nothing it sent becomes visible, and afterwards the image stored
 * before the barrage is still served byte for byte.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Digest } from "../../core/oci/digest.ts";
import type { ErrorCode } from "../../core/oci/errors.ts";
import { MediaType } from "../../core/oci/media-types.ts";
import {
  answerOf,
  expectOciError,
  header,
  openUpload,
  pushBlob,
  sha256Of,
  withQuery,
  type Answer,
} from "../helpers/oci.ts";
import { anImage } from "../helpers/images/builder.ts";
import { OciLayout, writeImage, type WrittenImage } from "../helpers/images/layout.ts";
import { rawRequest, type RawRequest, type RawResponse } from "../helpers/raw-http.ts";
import * as skopeo from "../helpers/skopeo.ts";
import { startRegistry, type Registry } from "../helpers/wrangler-dev.ts";

const INTACT = "e2e/intact";
const SCRATCH = "e2e/scratch";
const UNKNOWN: Digest = sha256Of("nobody ever pushed this");
const SHA512 = `sha512:${"ab".repeat(64)}`;

let registry: Registry;
let work: string;
let image: WrittenImage;

/** What the rows use: the stored image's config and first layer live in INTACT only. */
const stored = (): { config: Digest; configSize: number; layer: Digest; layerSize: number; manifest: Digest } => {
  const p = image.platforms[0]!;
  const l = p.layers[0]!.descriptor;
  return {
    config: p.config.digest,
    configSize: p.config.size,
    layer: l.digest,
    layerSize: l.size,
    manifest: p.manifest.digest,
  };
};

async function req(path: string, init: RequestInit = {}): Promise<Answer> {
  return answerOf(await fetch(`${registry.url}${path}`, init));
}

function raw(r: RawRequest): Promise<RawResponse | undefined> {
  return rawRequest(registry.port, r);
}

function putManifest(
  repo: string,
  ref: string,
  body: unknown,
  contentType: string = MediaType.OciManifest,
): Promise<Answer> {
  return req(`/v2/${repo}/manifests/${ref}`, {
    method: "PUT",
    headers: { "Content-Type": contentType },
    body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
}

/** A manifest that is valid in INTACT (its blobs are there), to be spoiled one field at a time. */
function manifestOf(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const s = stored();
  return {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: s.config, size: s.configSize },
    layers: [{ mediaType: MediaType.OciLayerGzip, digest: s.layer, size: s.layerSize }],
    ...overrides,
  };
}

async function expectAbsent(repo: string, digest: Digest): Promise<void> {
  const res = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`, { method: "HEAD" });
  expect(res.status, `${digest} must not be visible in ${repo}`).toBe(404);
}

async function expectNoManifest(repo: string, ref: string): Promise<void> {
  const res = await fetch(`${registry.url}/v2/${repo}/manifests/${ref}`, { method: "HEAD" });
  expect(res.status, `${repo}:${ref} must not exist`).toBe(404);
}

/** An upload session in SCRATCH that already holds `bytes`. */
async function sessionWith(bytes: Uint8Array): Promise<string> {
  const location = await openUpload(registry.url, SCRATCH);
  if (bytes.byteLength === 0) return location;
  const res = await fetch(location, {
    method: "PATCH",
    headers: { "Content-Type": "application/octet-stream", "Content-Range": `0-${bytes.byteLength - 1}` },
    body: bytes,
  });
  expect(res.status).toBe(202);
  return new URL(res.headers.get("location")!, registry.url).toString();
}

function pathOf(location: string): string {
  const u = new URL(location);
  return u.pathname + u.search;
}

interface Case {
  name: string;
  send: () => Promise<Answer | RawResponse | undefined>;
  status: number | number[];
  code: ErrorCode | ErrorCode[];
  /**
   * A body cut short may end without a usable answer: the server hangs up, or wrangler dev's own
   * proxy (in front of the Worker) reports the lost connection. If the Worker answers, it is a 4xx.
   */
  mayHangUp?: boolean;
  /** What must hold afterwards: typically, that nothing was stored. */
  then?: () => Promise<void>;
}

const ten = Buffer.from("0123456789");
const kib = randomBytes(1000);

const CASES: Case[] = [
  // Repository names: the grammar, and path tricks that must not reach another key.
  { name: "uppercase repository name", send: () => req("/v2/E2E/intact/tags/list"), status: 400, code: "NAME_INVALID" },
  {
    name: "uppercase name opening an upload",
    send: () => req("/v2/e2e/Intact/blobs/uploads/", { method: "POST" }),
    status: 400,
    code: "NAME_INVALID",
  },
  {
    name: "name of 256 characters",
    send: () => req(`/v2/${"a".repeat(256)}/tags/list`),
    status: 400,
    code: "NAME_INVALID",
  },
  {
    name: "name of 257 characters in 129 components pushing a manifest",
    send: () => putManifest(`${"a/".repeat(128)}b`, "v1", manifestOf()),
    status: 400,
    code: "NAME_INVALID",
  },
  {
    name: "name component with two dots",
    send: () => req("/v2/e2e/a..b/tags/list"),
    status: 400,
    code: "NAME_INVALID",
  },
  {
    name: "name component starting with an underscore (the internal key space)",
    send: () => req("/v2/e2e/_uploads/tags/list"),
    status: 400,
    code: "NAME_INVALID",
  },
  {
    name: "name component starting with a dash",
    send: () => req("/v2/e2e/-x/manifests/v1"),
    status: 400,
    code: "NAME_INVALID",
  },
  { name: "name with a space", send: () => req("/v2/e2e/in%20tact/tags/list"), status: 400, code: "NAME_INVALID" },
  {
    name: "name with a non-ASCII letter",
    send: () => req("/v2/e2e/%C3%A9t%C3%A9/tags/list"),
    status: 400,
    code: "NAME_INVALID",
  },
  {
    name: "empty name component",
    send: () => req("/v2/e2e//intact/tags/list"),
    status: [400, 404],
    code: ["NAME_INVALID", "NOT_FOUND"],
  },
  {
    name: "%2f-encoded slash inside a name",
    send: () => req("/v2/e2e%2fintact/tags/list"),
    status: [400, 404],
    code: ["NAME_INVALID", "NOT_FOUND"],
  },
  {
    name: "NUL byte in a name",
    send: () => req("/v2/e2e/in%00tact/tags/list"),
    status: [400, 404],
    code: ["NAME_INVALID", "NOT_FOUND"],
  },
  {
    name: "literal .. segments climbing out of /v2",
    send: () => raw({ method: "GET", path: `/v2/e2e/intact/../../../_blobs/tags/list` }),
    status: [400, 404],
    code: ["NAME_INVALID", "NOT_FOUND", "NAME_UNKNOWN"],
  },
  {
    name: "%2e%2e segments climbing into the internal key space",
    send: () => raw({ method: "GET", path: `/v2/e2e/%2e%2e/_uploads/blobs/${UNKNOWN}` }),
    status: [400, 404],
    code: ["NAME_INVALID", "NOT_FOUND"],
  },
  {
    name: "%2e%2e%2f in a name pushing a blob",
    send: () => req(`/v2/e2e/%2e%2e%2f_blobs/blobs/uploads/?digest=${sha256Of(ten)}`, { method: "POST", body: ten }),
    status: [400, 404],
    code: ["NAME_INVALID", "NOT_FOUND"],
    then: () => expectAbsent(SCRATCH, sha256Of(ten)),
  },

  // Tags.
  {
    name: "tag of 129 characters",
    send: () => putManifest(INTACT, "t".repeat(129), manifestOf()),
    status: 400,
    code: "TAG_INVALID",
  },
  {
    name: "tag starting with a dot",
    send: () => putManifest(INTACT, ".hidden", manifestOf()),
    status: 400,
    code: "TAG_INVALID",
  },
  {
    name: "tag starting with a dash",
    send: () => putManifest(INTACT, "-v1", manifestOf()),
    status: 400,
    code: "TAG_INVALID",
  },
  {
    name: "tag with a plus sign",
    send: () => putManifest(INTACT, "v1+build", manifestOf()),
    status: 400,
    code: "TAG_INVALID",
  },
  {
    name: "tag with an encoded slash",
    send: () => putManifest(INTACT, "v1%2fv2", manifestOf()),
    status: [400, 404],
    code: ["TAG_INVALID", "NOT_FOUND"],
  },
  {
    name: "pulling an invalid tag",
    send: () => req(`/v2/${INTACT}/manifests/.v1`),
    status: 404,
    code: "MANIFEST_UNKNOWN",
  },

  // Digests.
  {
    name: "blob digest too short",
    send: () => req(`/v2/${INTACT}/blobs/sha256:abc`),
    status: 400,
    code: "DIGEST_INVALID",
  },
  {
    name: "blob digest in uppercase hex",
    send: () => req(`/v2/${INTACT}/blobs/sha256:${"AB".repeat(32)}`),
    status: 400,
    code: "DIGEST_INVALID",
  },
  {
    name: "blob digest without an algorithm",
    send: () => req(`/v2/${INTACT}/blobs/${"ab".repeat(32)}`),
    status: 400,
    code: "DIGEST_INVALID",
  },
  // A digest of an algorithm the registry does not compute is 400 DIGEST_INVALID, never 415, which is
  // about request bodies. sha512 is one it computes: a blob nobody pushed under it is simply not there.
  {
    name: "sha512 blob digest",
    send: () => req(`/v2/${INTACT}/blobs/${SHA512}`),
    status: 404,
    code: "BLOB_UNKNOWN",
  },
  {
    name: "md5 blob digest",
    send: () => req(`/v2/${INTACT}/blobs/md5:${"ab".repeat(16)}`),
    status: 400,
    code: "DIGEST_INVALID",
  },
  {
    name: "monolithic upload whose digest does not match its body",
    send: () => req(`/v2/${SCRATCH}/blobs/uploads/?digest=${UNKNOWN}`, { method: "POST", body: kib }),
    status: 400,
    code: "DIGEST_INVALID",
    then: async () => {
      await expectAbsent(SCRATCH, UNKNOWN);
      await expectAbsent(SCRATCH, sha256Of(kib));
    },
  },
  {
    name: "monolithic upload with a sha512 digest of other bytes",
    send: () => req(`/v2/${SCRATCH}/blobs/uploads/?digest=${SHA512}`, { method: "POST", body: kib }),
    status: 400,
    code: "DIGEST_INVALID",
    then: () => expectAbsent(SCRATCH, sha256Of(kib)),
  },
  {
    name: "monolithic upload with a malformed digest",
    send: () => req(`/v2/${SCRATCH}/blobs/uploads/?digest=sha256:xyz`, { method: "POST", body: kib }),
    status: 400,
    code: "DIGEST_INVALID",
    then: () => expectAbsent(SCRATCH, sha256Of(kib)),
  },
  {
    name: "closing an upload with a digest that does not match",
    send: async () => req(pathOf(withQuery(await sessionWith(kib), { digest: UNKNOWN })), { method: "PUT" }),
    status: 400,
    code: "DIGEST_INVALID",
    then: async () => {
      await expectAbsent(SCRATCH, UNKNOWN);
      await expectAbsent(SCRATCH, sha256Of(kib));
    },
  },
  {
    name: "closing an upload without ?digest=",
    send: async () => req(pathOf(await sessionWith(kib)), { method: "PUT" }),
    status: 400,
    code: "DIGEST_INVALID",
    then: () => expectAbsent(SCRATCH, sha256Of(kib)),
  },
  {
    name: "closing an upload with a sha512 digest of other bytes",
    send: async () => req(pathOf(withQuery(await sessionWith(kib), { digest: SHA512 })), { method: "PUT" }),
    status: 400,
    code: "DIGEST_INVALID",
    then: () => expectAbsent(SCRATCH, sha256Of(kib)),
  },
  {
    name: "manifest pushed by a digest that is not its own",
    send: () => putManifest(INTACT, UNKNOWN, manifestOf()),
    status: 400,
    code: "DIGEST_INVALID",
    then: () => expectNoManifest(INTACT, UNKNOWN),
  },
  {
    name: "manifest pulled by a malformed digest",
    send: () => req(`/v2/${INTACT}/manifests/sha256:zz`),
    status: 400,
    code: "DIGEST_INVALID",
  },
  {
    name: "manifest pulled by a sha512 digest nobody pushed",
    send: () => req(`/v2/${INTACT}/manifests/${SHA512}`),
    status: 404,
    code: "MANIFEST_UNKNOWN",
  },
  {
    name: "blob delete with a malformed digest",
    send: () => req(`/v2/${INTACT}/blobs/sha256:nothex`, { method: "DELETE" }),
    status: 400,
    code: "DIGEST_INVALID",
  },
  {
    name: "cross-repository mount of a malformed digest",
    send: () => req(`/v2/${SCRATCH}/blobs/uploads/?mount=sha256:short&from=${INTACT}`, { method: "POST" }),
    status: 400,
    code: "DIGEST_INVALID",
  },

  // Upload sessions: unknown, foreign, stale, and chunks out of order.
  {
    name: "PATCH to an unknown session",
    send: () => req(`/v2/${SCRATCH}/blobs/uploads/${crypto.randomUUID()}`, { method: "PATCH", body: ten }),
    status: 404,
    code: "BLOB_UPLOAD_UNKNOWN",
  },
  {
    name: "PUT to an unknown session",
    send: () =>
      req(`/v2/${SCRATCH}/blobs/uploads/${crypto.randomUUID()}?digest=${sha256Of(ten)}`, { method: "PUT", body: ten }),
    status: 404,
    code: "BLOB_UPLOAD_UNKNOWN",
    then: () => expectAbsent(SCRATCH, sha256Of(ten)),
  },
  {
    name: "status of an unknown session",
    send: () => req(`/v2/${SCRATCH}/blobs/uploads/${crypto.randomUUID()}`),
    status: 404,
    code: "BLOB_UPLOAD_UNKNOWN",
  },
  {
    name: "cancelling an unknown session",
    send: () => req(`/v2/${SCRATCH}/blobs/uploads/${crypto.randomUUID()}`, { method: "DELETE" }),
    status: 404,
    code: "BLOB_UPLOAD_UNKNOWN",
  },
  {
    name: "session id made of path characters",
    send: () =>
      raw({
        method: "PATCH",
        path: `/v2/${SCRATCH}/blobs/uploads/..%2f..%2f_uploads`,
        body: ten,
        headers: { "Content-Length": "10" },
      }),
    status: [400, 404],
    code: ["BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"],
  },
  {
    name: "session used through another repository",
    send: async () => {
      const uuid = new URL(await openUpload(registry.url, SCRATCH)).pathname.split("/").pop();
      return req(`/v2/e2e/elsewhere/blobs/uploads/${uuid}`, { method: "PATCH", body: ten });
    },
    status: 404,
    code: "BLOB_UPLOAD_UNKNOWN",
  },
  {
    name: "stale session: PATCH after the upload completed",
    send: async () => {
      const blob = randomBytes(64);
      const done = await fetch(withQuery(await openUpload(registry.url, SCRATCH), { digest: sha256Of(blob) }), {
        method: "PUT",
        headers: { "Content-Type": "application/octet-stream" },
        body: blob,
      });
      expect(done.status).toBe(201);
      const session = done.url.replace(/\?.*$/, "");
      return req(pathOf(session), { method: "PATCH", body: ten });
    },
    status: 404,
    code: "BLOB_UPLOAD_UNKNOWN",
  },
  {
    name: "stale session: PATCH after the upload was cancelled",
    send: async () => {
      const location = await sessionWith(ten);
      expect((await fetch(location, { method: "DELETE" })).status).toBe(204);
      return req(pathOf(location), { method: "PATCH", body: ten });
    },
    status: 404,
    code: "BLOB_UPLOAD_UNKNOWN",
  },
  {
    name: "stale session: closing after the upload was cancelled",
    send: async () => {
      const location = await sessionWith(ten);
      expect((await fetch(location, { method: "DELETE" })).status).toBe(204);
      return req(pathOf(withQuery(location, { digest: sha256Of(ten) })), { method: "PUT" });
    },
    status: 404,
    code: "BLOB_UPLOAD_UNKNOWN",
    then: () => expectAbsent(SCRATCH, sha256Of(ten)),
  },
  {
    name: "out-of-order chunk leaving a gap",
    send: async () => {
      const location = await sessionWith(ten);
      const answer = await req(pathOf(location), { method: "PATCH", headers: { "Content-Range": "20-29" }, body: ten });
      // The session is unharmed: it still holds exactly the first chunk.
      const status = await fetch(location);
      expect(status.headers.get("range")).toBe("0-9");
      return answer;
    },
    status: 416,
    code: "RANGE_INVALID",
  },
  {
    name: "overlapping chunk",
    send: async () =>
      req(pathOf(await sessionWith(ten)), { method: "PATCH", headers: { "Content-Range": "5-14" }, body: ten }),
    status: 416,
    code: "RANGE_INVALID",
  },
  {
    name: "first chunk not at offset 0",
    send: async () =>
      req(pathOf(await sessionWith(new Uint8Array())), {
        method: "PATCH",
        headers: { "Content-Range": "10-19" },
        body: ten,
      }),
    status: 416,
    code: "RANGE_INVALID",
  },
  {
    name: "inverted Content-Range",
    send: async () =>
      req(pathOf(await sessionWith(new Uint8Array())), {
        method: "PATCH",
        headers: { "Content-Range": "9-0" },
        body: ten,
      }),
    status: [400, 416],
    code: ["RANGE_INVALID", "BLOB_UPLOAD_INVALID"],
  },
  {
    name: "malformed Content-Range",
    send: async () =>
      req(pathOf(await sessionWith(new Uint8Array())), {
        method: "PATCH",
        headers: { "Content-Range": "bytes=ten" },
        body: ten,
      }),
    status: [400, 416],
    code: ["BLOB_UPLOAD_INVALID", "RANGE_INVALID"],
  },
  {
    name: "Content-Range longer than the chunk",
    send: async () =>
      req(pathOf(await sessionWith(new Uint8Array())), {
        method: "PATCH",
        headers: { "Content-Range": "0-99" },
        body: ten,
      }),
    status: [400, 416],
    code: ["SIZE_INVALID", "RANGE_INVALID"],
  },
  {
    name: "closing chunk out of order",
    send: async () => {
      const location = await sessionWith(ten);
      // The digest of what the claimed range would make: a server that ignored the range fails the digest.
      const claimed = Buffer.concat([ten, Buffer.alloc(90), ten]);
      return req(pathOf(withQuery(location, { digest: sha256Of(claimed) })), {
        method: "PUT",
        headers: { "Content-Range": "100-109" },
        body: ten,
      });
    },
    status: [400, 416],
    code: ["RANGE_INVALID", "DIGEST_INVALID"],
  },

  // Blobs.
  { name: "unknown blob", send: () => req(`/v2/${INTACT}/blobs/${UNKNOWN}`), status: 404, code: "BLOB_UNKNOWN" },
  {
    name: "blob that only another repository holds",
    send: () => req(`/v2/${SCRATCH}/blobs/${stored().layer}`),
    status: 404,
    code: "BLOB_UNKNOWN",
  },
  {
    name: "deleting an unknown blob",
    send: () => req(`/v2/${INTACT}/blobs/${UNKNOWN}`, { method: "DELETE" }),
    status: 404,
    code: "BLOB_UNKNOWN",
  },
  {
    name: "range past the end of a blob",
    send: () => req(`/v2/${INTACT}/blobs/${stored().layer}`, { headers: { Range: "bytes=999999999-" } }),
    status: 416,
    code: "RANGE_INVALID",
  },

  // Manifests: malformed bodies, wrong media types, references to what is not there.
  {
    name: "manifest that is not JSON",
    send: () => putManifest(INTACT, "bad", '{"schemaVersion": 2,'),
    status: 400,
    code: "MANIFEST_INVALID",
  },
  {
    name: "manifest that is a JSON array",
    send: () => putManifest(INTACT, "bad", "[]"),
    status: 400,
    code: "MANIFEST_INVALID",
  },
  { name: "empty manifest", send: () => putManifest(INTACT, "bad", ""), status: 400, code: "MANIFEST_INVALID" },
  {
    name: "manifest that is not UTF-8",
    send: () => putManifest(INTACT, "bad", Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])),
    status: 400,
    code: "MANIFEST_INVALID",
  },
  {
    name: "manifest of an unknown media type",
    send: () =>
      putManifest(
        INTACT,
        "bad",
        manifestOf({ mediaType: "application/vnd.example+json" }),
        "application/vnd.example+json",
      ),
    status: [400, 415],
    code: ["MANIFEST_INVALID", "UNSUPPORTED"],
  },
  {
    name: "Docker schema 1 manifest",
    send: () =>
      putManifest(
        INTACT,
        "bad",
        { schemaVersion: 1, name: INTACT, tag: "bad", architecture: "amd64", fsLayers: [], history: [] },
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
      ),
    status: [400, 415],
    code: ["MANIFEST_INVALID", "UNSUPPORTED"],
  },
  {
    name: "Content-Type that contradicts the body's mediaType",
    send: () => putManifest(INTACT, "bad", manifestOf(), MediaType.OciIndex),
    status: 400,
    code: "MANIFEST_INVALID",
  },
  {
    name: "schemaVersion 1 with an OCI media type",
    send: () => putManifest(INTACT, "bad", manifestOf({ schemaVersion: 1 })),
    status: 400,
    code: "MANIFEST_INVALID",
  },
  {
    name: "manifest without a config",
    send: () => putManifest(INTACT, "bad", manifestOf({ config: undefined })),
    status: 400,
    code: "MANIFEST_INVALID",
  },
  {
    name: "manifest whose layers is not an array",
    send: () => putManifest(INTACT, "bad", manifestOf({ layers: { digest: stored().layer } })),
    status: 400,
    code: "MANIFEST_INVALID",
  },
  {
    name: "descriptor with a malformed digest",
    send: () =>
      putManifest(
        INTACT,
        "bad",
        manifestOf({ layers: [{ mediaType: MediaType.OciLayerGzip, digest: "sha256:1", size: 1 }] }),
      ),
    status: 400,
    code: "MANIFEST_INVALID",
  },
  {
    name: "descriptor with a negative size",
    send: () =>
      putManifest(
        INTACT,
        "bad",
        manifestOf({ layers: [{ mediaType: MediaType.OciLayerGzip, digest: stored().layer, size: -1 }] }),
      ),
    status: 400,
    code: "MANIFEST_INVALID",
  },
  {
    name: "index whose manifests is not an array",
    send: () =>
      putManifest(
        INTACT,
        "bad",
        { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: "none" },
        MediaType.OciIndex,
      ),
    status: 400,
    code: "MANIFEST_INVALID",
  },
  {
    name: "manifest over 4 MiB",
    send: () => putManifest(INTACT, "huge", manifestOf({ annotations: { padding: "x".repeat(5 * 1024 * 1024) } })),
    status: [400, 413],
    code: ["MANIFEST_INVALID", "PAYLOAD_TOO_LARGE"],
    then: () => expectNoManifest(INTACT, "huge"),
  },
  {
    name: "manifest referencing an unknown layer",
    send: () =>
      putManifest(
        INTACT,
        "bad",
        manifestOf({ layers: [{ mediaType: MediaType.OciLayerGzip, digest: UNKNOWN, size: 10 }] }),
      ),
    status: 404,
    code: "MANIFEST_BLOB_UNKNOWN",
    then: () => expectNoManifest(INTACT, "bad"),
  },
  {
    name: "manifest referencing an unknown config",
    send: () =>
      putManifest(INTACT, "bad", manifestOf({ config: { mediaType: MediaType.OciConfig, digest: UNKNOWN, size: 2 } })),
    status: 404,
    code: "MANIFEST_BLOB_UNKNOWN",
    then: () => expectNoManifest(INTACT, "bad"),
  },
  {
    name: "manifest referencing blobs that only another repository holds",
    send: () => putManifest(SCRATCH, "borrowed", manifestOf()),
    status: 404,
    code: "MANIFEST_BLOB_UNKNOWN",
    then: () => expectNoManifest(SCRATCH, "borrowed"),
  },
  {
    name: "index referencing an unknown manifest",
    send: () =>
      putManifest(
        INTACT,
        "bad",
        {
          schemaVersion: 2,
          mediaType: MediaType.OciIndex,
          manifests: [
            {
              mediaType: MediaType.OciManifest,
              digest: UNKNOWN,
              size: 100,
              platform: { os: "linux", architecture: "amd64" },
            },
          ],
        },
        MediaType.OciIndex,
      ),
    status: 404,
    code: ["MANIFEST_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"],
    then: () => expectNoManifest(INTACT, "bad"),
  },
  { name: "unknown tag", send: () => req(`/v2/${INTACT}/manifests/nope`), status: 404, code: "MANIFEST_UNKNOWN" },
  {
    name: "unknown manifest digest",
    send: () => req(`/v2/${INTACT}/manifests/${UNKNOWN}`),
    status: 404,
    code: "MANIFEST_UNKNOWN",
  },
  {
    name: "deleting an unknown manifest",
    send: () => req(`/v2/${INTACT}/manifests/${UNKNOWN}`, { method: "DELETE" }),
    status: 404,
    code: "MANIFEST_UNKNOWN",
  },
  {
    name: "deleting an unknown tag",
    send: () => req(`/v2/${INTACT}/manifests/nope`, { method: "DELETE" }),
    status: 404,
    code: "MANIFEST_UNKNOWN",
  },
  {
    name: "tags of an unknown repository",
    send: () => req("/v2/e2e/nobody/tags/list"),
    status: 404,
    code: "NAME_UNKNOWN",
  },
  {
    name: "manifest of an unknown repository",
    send: () => req("/v2/e2e/nobody/manifests/v1"),
    status: 404,
    code: ["MANIFEST_UNKNOWN", "NAME_UNKNOWN"],
  },

  // Endpoints and methods that do not exist.
  {
    name: "unknown endpoint under a repository",
    send: () => req(`/v2/${INTACT}/nothing-here`),
    status: 404,
    code: "NOT_FOUND",
  },
  { name: "path outside /v2", send: () => req("/admin"), status: 404, code: "NOT_FOUND" },
  {
    name: "POST to a manifest",
    send: () => req(`/v2/${INTACT}/manifests/v1`, { method: "POST", body: "{}" }),
    status: [404, 405],
    code: ["METHOD_UNKNOWN", "NOT_FOUND"],
  },
  {
    name: "PATCH on a blob",
    send: () => req(`/v2/${INTACT}/blobs/${stored().layer}`, { method: "PATCH", body: ten }),
    status: [404, 405],
    code: ["METHOD_UNKNOWN", "NOT_FOUND"],
  },

  // Bodies that lie about their length.
  {
    name: "monolithic upload cut short (Content-Length larger than the body)",
    send: () =>
      raw({
        method: "POST",
        path: `/v2/${SCRATCH}/blobs/uploads/?digest=${sha256Of(kib)}`,
        headers: { "Content-Type": "application/octet-stream", "Content-Length": String(kib.byteLength) },
        body: kib.subarray(0, 400),
        halfClose: true,
      }),
    mayHangUp: true,
    status: 400,
    code: ["SIZE_INVALID", "DIGEST_INVALID", "BLOB_UPLOAD_INVALID"],
    then: () => expectAbsent(SCRATCH, sha256Of(kib)),
  },
  {
    name: "chunk cut short",
    send: async () => {
      const location = await sessionWith(new Uint8Array());
      const answer = await raw({
        method: "PATCH",
        path: pathOf(location),
        headers: { "Content-Type": "application/octet-stream", "Content-Length": "1000", "Content-Range": "0-999" },
        body: kib.subarray(0, 400),
        halfClose: true,
      });
      // Whatever became of the session, it cannot yield the blob that was never fully sent.
      const close = await fetch(withQuery(location, { digest: sha256Of(kib) }), { method: "PUT" });
      expect(close.status).toBeGreaterThanOrEqual(400);
      expect(close.status).toBeLessThan(500);
      return answer;
    },
    mayHangUp: true,
    status: 400,
    code: ["SIZE_INVALID", "BLOB_UPLOAD_INVALID"],
    then: () => expectAbsent(SCRATCH, sha256Of(kib)),
  },
  {
    name: "streamed (chunked) chunk cut short before its last chunk",
    send: async () => {
      const location = await sessionWith(new Uint8Array());
      return raw({
        method: "PATCH",
        path: pathOf(location),
        headers: { "Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked" },
        body: `a\r\n0123456789\r\n64\r\n${"x".repeat(30)}`,
        halfClose: true,
      });
    },
    mayHangUp: true,
    status: 400,
    code: ["SIZE_INVALID", "BLOB_UPLOAD_INVALID"],
  },
  {
    name: "manifest cut short",
    send: () => {
      const body = JSON.stringify(manifestOf());
      return raw({
        method: "PUT",
        path: `/v2/${INTACT}/manifests/cut`,
        headers: { "Content-Type": MediaType.OciManifest, "Content-Length": String(body.length) },
        body: body.slice(0, body.length - 20),
        halfClose: true,
      });
    },
    mayHangUp: true,
    status: 400,
    code: ["MANIFEST_INVALID", "SIZE_INVALID"],
    then: () => expectNoManifest(INTACT, "cut"),
  },
  {
    name: "body longer than its Content-Length",
    send: () =>
      raw({
        method: "POST",
        path: `/v2/${SCRATCH}/blobs/uploads/?digest=${sha256Of(kib)}`,
        headers: { "Content-Type": "application/octet-stream", "Content-Length": "500" },
        body: kib,
      }),
    status: 400,
    code: "DIGEST_INVALID",
    then: async () => {
      await expectAbsent(SCRATCH, sha256Of(kib));
      await expectAbsent(SCRATCH, sha256Of(kib.subarray(0, 500)));
    },
  },
];

describe("bad input never breaks the registry", () => {
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "2dfs-e2e-bad-"));
    [registry, image] = await Promise.all([
      // npm start: nothing stands between the socket and the Worker, so every answer, to a body cut
      // short too, is the Worker's own. (wrangler dev's proxy answers those itself, with a 500.)
      startRegistry({ launcher: "npm start" }),
      writeImage(join(work, "src"), anImage().platforms(["linux/amd64"]).randomLayers(2, 200_000), "v1"),
    ]);
    await skopeo.copy(image.ref, `docker://${registry.host}/${INTACT}:v1`, { preserveDigests: true });
    // SCRATCH exists as a repository (so "unknown blob" rows are about blobs, not the repository).
    await pushBlob(registry.url, SCRATCH, Buffer.from("scratch"));
  });

  afterAll(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("has at least 50 cases", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(50);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  for (const c of CASES) {
    it(c.name, async () => {
      const answer = await c.send();
      if (answer === undefined) {
        expect(c.mayHangUp, "the server closed the connection without an answer").toBe(true);
      } else if (c.mayHangUp) {
        // The Worker answered: still a client error, never a 5xx, and OCI JSON when there is a body.
        expect(answer.status, answer.body).toBeGreaterThanOrEqual(400);
        expect(answer.status, answer.body).toBeLessThan(500);
        if (answer.body) expectOciError(answer, answer.status, c.code);
      } else {
        expectOciError(answer, c.status, c.code);
      }
      await c.then?.();
    });
  }

  it("still serves the image stored before, byte for byte", async () => {
    const ref = `docker://${registry.host}/${INTACT}:v1`;
    const src = new OciLayout(image.dir);
    expect((await skopeo.inspectRaw(ref)).equals(await src.readBlob(stored().manifest))).toBe(true);
    const out = join(work, "out");
    await skopeo.copy(ref, `oci:${out}:v1`, { preserveDigests: true });
    const back = new OciLayout(out);
    expect(await back.blobDigests()).toEqual(image.digests);
    for (const digest of image.digests) {
      expect((await back.readBlob(digest)).equals(await src.readBlob(digest)), digest).toBe(true);
    }
    const tags = await skopeo.listTags(`docker://${registry.host}/${INTACT}`);
    expect(tags).toEqual(["v1"]);
    expect(header(await req(`/v2/${INTACT}/manifests/v1`, { method: "HEAD" }), "docker-content-digest")).toBe(
      stored().manifest,
    );
  });
});
