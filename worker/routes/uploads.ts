/**
 * Blob uploads: monolithic (POST ?digest= with a body), sessions (POST then PATCH* then PUT),
 * cross-repository mounts, and the reference `tdfs` builder's POST ?digest= with no body.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import type { Digest } from "../../core/oci/digest.ts";
import { parseDigest } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import { validateName } from "../../core/oci/reference.ts";
import { mayMountFromAnywhere, mayPull } from "../auth/middleware.ts";
import type { AppEnv } from "../env.ts";
import { absolute, contentLength, hasBody, repoName, uploadRange } from "../http.ts";
import { R2_SINGLE_PUT_MAX, type BlobInfo } from "../storage/blobs.ts";
import type { UploadSession } from "../storage/uploads.ts";

export const uploads = new Hono<AppEnv>();

/** Under Cloudflare's 100 MB request-body limit on Free and Pro zones, with room for headers. */
const DEFAULT_CHUNK_MAX = 95_000_000;

uploads.post("/:name{.+}/blobs/uploads/", async (c) => {
  const name = repoName(c);
  const store = c.var.store;
  const mount = c.req.query("mount");
  if (mount !== undefined) {
    const digest = parseDigest(mount);
    const from = c.req.query("from");
    // With `from`, the blob must be in that repository, which the caller may pull; without it, any
    // stored copy will do, for a caller who may pull everything (worker/auth/middleware.ts).
    let info: BlobInfo | null = null;
    if (from) {
      const source = validateName(from);
      if (mayPull(c, source)) info = await store.blobs.stat(source, digest);
    } else if (mayMountFromAnywhere(c)) {
      info = await store.blobs.statGlobal(digest);
    }
    if (info) return created(c, name, await linkBlob(c, name, info));
    // Not mountable: the spec says to answer as for a new upload session.
  }
  const digestParam = c.req.query("digest");
  if (digestParam !== undefined && hasBody(c.req.raw)) {
    const digest = parseDigest(digestParam);
    return created(c, name, await linkBlob(c, name, await storeWhole(c, name, digest, undefined)));
  }
  // A POST ?digest=<bare hex> with no body (the tdfs builder) opens a session like any other.
  const session = await store.uploads.create(name);
  return sessionResponse(c, session, 202);
});

uploads.get("/:name{.+}/blobs/uploads/:uuid", async (c) => {
  const session = await c.var.store.uploads.get(repoName(c), uploadTarget(c).uuid);
  return sessionResponse(c, session, 204);
});

uploads.patch("/:name{.+}/blobs/uploads/:uuid", async (c) => {
  const store = c.var.store;
  const session = await store.uploads.get(repoName(c), uploadTarget(c).uuid);
  const length = contentLength(c.req.raw);
  let expected = length;
  const cr = c.req.header("content-range");
  if (cr !== undefined) {
    const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(cr.trim());
    if (!m) throw new RegistryError("BLOB_UPLOAD_INVALID", "malformed Content-Range", { contentRange: cr });
    const start = Number(m[1]);
    const end = Number(m[2]);
    if (start !== session.offset || end < start) {
      throw new RegistryError(
        "RANGE_INVALID",
        "chunk is out of order",
        { expectedStart: session.offset, contentRange: cr },
        {
          Location: absolute(c, `/v2/${session.repo}/blobs/uploads/${session.uuid}`),
          Range: uploadRange(session.offset),
          "Docker-Upload-UUID": session.uuid,
        },
      );
    }
    expected = end - start + 1;
    if (length !== undefined && length !== expected) {
      throw new RegistryError("SIZE_INVALID", "Content-Length does not match Content-Range", {
        contentLength: length,
        contentRange: cr,
      });
    }
  }
  const next = await store.uploads.append(session, c.req.raw.body, expected, cr === undefined);
  return sessionResponse(c, next, 202);
});

uploads.put("/:name{.+}/blobs/uploads/:uuid", async (c) => {
  const name = repoName(c);
  const store = c.var.store;
  const target = uploadTarget(c);
  const session = await store.uploads.get(name, target.uuid);
  const digestParam = target.query("digest");
  if (digestParam === undefined) {
    throw new RegistryError("DIGEST_INVALID", "closing an upload needs ?digest=", { uuid: session.uuid });
  }
  const digest = parseDigest(digestParam);
  let info: BlobInfo;
  if (session.offset === 0 && hasBody(c.req.raw)) {
    // The whole blob in the closing request: store it in one pass, as a monolithic upload.
    try {
      info = await storeWhole(c, name, digest, session);
    } finally {
      await store.uploads.cancel(session);
    }
  } else {
    let s = session;
    if (hasBody(c.req.raw)) {
      try {
        s = await store.uploads.append(session, c.req.raw.body, contentLength(c.req.raw));
      } catch (e) {
        if (e instanceof RegistryError && e.code === "SIZE_INVALID") await store.uploads.cancel(session);
        throw e;
      }
    }
    info = await store.uploads.complete(s, digest);
  }
  return created(c, name, await linkBlob(c, name, info));
});

uploads.delete("/:name{.+}/blobs/uploads/:uuid", async (c) => {
  const store = c.var.store;
  const session = await store.uploads.get(repoName(c), uploadTarget(c).uuid);
  await store.uploads.cancel(session);
  return c.body(null, 204);
});

/**
 * The session named in the path, and the request's query. The reference `tdfs` builder appends
 * `&digest=...` to the Location as if it always had a query, so a path segment `<uuid>&k=v`
 * carries query parameters too.
 */
function uploadTarget(c: Context<AppEnv>): { uuid: string; query(name: string): string | undefined } {
  const [uuid = "", ...extra] = c.req.param("uuid")!.split("&");
  const appended = new URLSearchParams(extra.join("&"));
  return { uuid, query: (name) => c.req.query(name) ?? appended.get(name) ?? undefined };
}

/**
 * Stores a blob that arrives whole in one request. With a known length up to R2's single-put
 * limit it streams straight to its final key, hashed natively on the way; otherwise it goes
 * through a session's multipart path.
 */
async function storeWhole(
  c: Context<AppEnv>,
  name: string,
  digest: Digest,
  existing: UploadSession | undefined,
): Promise<BlobInfo> {
  const store = c.var.store;
  const length = contentLength(c.req.raw);
  const body = c.req.raw.body;
  if (length !== undefined && length <= R2_SINGLE_PUT_MAX && body) {
    return store.blobs.putStream(digest, body, length);
  }
  const session = existing ?? (await store.uploads.create(name));
  try {
    const appended = await store.uploads.append(session, body, length);
    return await store.uploads.complete(appended, digest);
  } catch (e) {
    await store.uploads.cancel(session).catch(() => undefined);
    throw e;
  }
}

async function linkBlob(c: Context<AppEnv>, name: string, info: BlobInfo): Promise<BlobInfo> {
  await c.var.store.blobs.link(name, info);
  await c.var.store.catalog.touch(name);
  return info;
}

function created(c: Context<AppEnv>, name: string, info: BlobInfo): Response {
  return new Response(null, {
    status: 201,
    headers: {
      Location: absolute(c, `/v2/${name}/blobs/${info.digest}`),
      "Docker-Content-Digest": info.digest,
      "Content-Length": "0",
    },
  });
}

function sessionResponse(c: Context<AppEnv>, session: UploadSession, status: 202 | 204): Response {
  return new Response(null, {
    status,
    headers: {
      Location: absolute(c, `/v2/${session.repo}/blobs/uploads/${session.uuid}`),
      Range: uploadRange(session.offset),
      "Docker-Upload-UUID": session.uuid,
      "OCI-Chunk-Max-Length": String(Number(c.env.CHUNK_MAX_BYTES ?? DEFAULT_CHUNK_MAX)),
      "Content-Length": "0",
    },
  });
}
