/**
 * Blob uploads: monolithic (POST ?digest= with a body), sessions (POST then PATCH* then PUT),
 * cross-repository mounts, and the reference `tdfs` builder's POST ?digest= with no body. The
 * storage layer (worker/storage/uploads.ts, blobs.ts) makes each of them safe against racing
 * requests; the routes only read the protocol's headers.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import type { Digest } from "../../core/oci/digest.ts";
import { algorithmOf, parseDigest } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import { validateName } from "../../core/oci/reference.ts";
import { mayMountFromAnywhere, mayPull } from "../auth/middleware.ts";
import type { AppEnv } from "../env.ts";
import { absolute, contentLength, hasBody, parseContentRange, repoName, uploadRange } from "../http.ts";
import { R2_SINGLE_PUT_MAX, type BlobInfo } from "../storage/blobs.ts";
import { outOfOrder, type Loaded, type UploadSession } from "../storage/uploads.ts";

export const uploads = new Hono<AppEnv>();

uploads.post("/:name{.+}/blobs/uploads/", async (c) => {
  const name = repoName(c);
  const store = c.var.store;
  const mount = c.req.query("mount");
  if (mount !== undefined) {
    const digest = parseDigest(mount);
    const from = c.req.query("from");
    // With `from`, the blob must be in that repository, which the caller may pull; without it, any
    // stored copy will do, for a caller who may pull everything (worker/auth/middleware.ts).
    let committed: BlobInfo | null = null;
    if (from) {
      const source = validateName(from);
      if (mayPull(c, source) && (await store.blobs.stat(source, digest)))
        committed = await store.blobs.commit(name, digest);
    } else if (mayMountFromAnywhere(c)) {
      committed = await store.blobs.commit(name, digest);
    }
    if (committed) return created(c, name, await touched(c, name, committed));
    // Not mountable: the spec says to answer as for a new upload session.
  }
  const digestParam = c.req.query("digest");
  if (digestParam !== undefined && hasBody(c.req.raw)) {
    const digest = parseDigest(digestParam);
    return created(c, name, await touched(c, name, await storeWhole(c, name, digest)));
  }
  // A POST ?digest=<bare hex> with no body (the tdfs builder) opens a session like any other.
  const loaded = await store.uploads.create(name);
  return sessionResponse(c, loaded.session, 202);
});

uploads.get("/:name{.+}/blobs/uploads/:uuid", async (c) => {
  // A session a PUT sealed still answers, so that a client whose PUT failed learns where it is.
  const { session } = await c.var.store.uploads.get(repoName(c), uploadTarget(c).uuid, "any");
  return sessionResponse(c, session, 204);
});

uploads.patch("/:name{.+}/blobs/uploads/:uuid", async (c) => {
  const store = c.var.store;
  const loaded = await store.uploads.get(repoName(c), uploadTarget(c).uuid);
  const { session } = loaded;
  const length = contentLength(c.req.raw);
  let expected = length;
  const cr = c.req.header("content-range");
  if (cr !== undefined) {
    const { start, end } = parseContentRange(cr);
    if (start !== session.offset || end < start) {
      throw withLocation(c, session, outOfOrder(session, "chunk is out of order", { contentRange: cr }));
    }
    expected = end - start + 1;
    if (length !== undefined && length !== expected) {
      throw new RegistryError("SIZE_INVALID", "Content-Length does not match Content-Range", {
        contentLength: length,
        contentRange: cr,
      });
    }
  }
  try {
    const next = await store.uploads.append(loaded, c.req.raw.body, expected);
    return sessionResponse(c, next.session, 202);
  } catch (e) {
    throw e instanceof RegistryError && e.code === "RANGE_INVALID" ? withLocation(c, session, e) : e;
  }
});

uploads.put("/:name{.+}/blobs/uploads/:uuid", async (c) => {
  const name = repoName(c);
  const store = c.var.store;
  const target = uploadTarget(c);
  const digestParam = target.query("digest");
  if (digestParam === undefined) {
    await store.uploads.get(name, target.uuid);
    throw new RegistryError("DIGEST_INVALID", "closing an upload needs ?digest=", { uuid: target.uuid });
  }
  const digest = parseDigest(digestParam);
  // A session sealed by an earlier attempt of this PUT (the same digest) is finished by this one.
  const loaded = await store.uploads.get(name, target.uuid, digest);
  let info: BlobInfo;
  if (loaded.session.offset === 0 && hasBody(c.req.raw)) {
    // The whole blob in the closing request: stored in one pass, as a monolithic upload.
    info = await store.uploads.closeWhole(loaded, digest, () => storeWhole(c, name, digest));
  } else {
    let current: Loaded = loaded;
    // A sealed session holds every chunk already: the body of a retried PUT is the one it has.
    if (hasBody(c.req.raw) && loaded.session.state === "open") {
      current = await store.uploads.append(loaded, c.req.raw.body, contentLength(c.req.raw));
    }
    info = await store.uploads.complete(current, digest);
  }
  return created(c, name, await touched(c, name, info));
});

uploads.delete("/:name{.+}/blobs/uploads/:uuid", async (c) => {
  const store = c.var.store;
  const loaded = await store.uploads.get(repoName(c), uploadTarget(c).uuid);
  await store.uploads.cancel(loaded);
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
 * Stores and commits a blob that arrives whole in one request. With a known length up to R2's
 * single-put limit it streams straight into one object, hashed natively on the way; otherwise it
 * goes through a session of its own.
 */
async function storeWhole(c: Context<AppEnv>, name: string, digest: Digest): Promise<BlobInfo> {
  const store = c.var.store;
  const length = contentLength(c.req.raw);
  const body = c.req.raw.body;
  if (length !== undefined && length <= R2_SINGLE_PUT_MAX && body) {
    return store.blobs.putStream(name, digest, body, length);
  }
  const loaded = await store.uploads.create(name);
  let appended: Loaded;
  try {
    appended = await store.uploads.append(loaded, body, length, algorithmOf(digest));
  } catch (e) {
    await store.uploads.cancel(loaded).catch(() => undefined);
    throw e;
  }
  return store.uploads.complete(appended, digest);
}

/** The repository exists once it holds a blob. */
async function touched(c: Context<AppEnv>, name: string, info: BlobInfo): Promise<BlobInfo> {
  await c.var.store.catalog.touch(name);
  return info;
}

/** A 416 with the session's Location, so that a client can resume where the registry is. */
function withLocation(c: Context<AppEnv>, session: UploadSession, e: RegistryError): RegistryError {
  return new RegistryError(e.code, e.message, e.detail, {
    ...e.headers,
    Location: absolute(c, `/v2/${session.repo}/blobs/uploads/${session.uuid}`),
  });
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
      "OCI-Chunk-Max-Length": String(c.var.store.config.chunkMaxBytes),
      "Content-Length": "0",
    },
  });
}
