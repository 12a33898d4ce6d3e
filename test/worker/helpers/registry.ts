/**
 * A small client for the Worker under test. Requests go to `exports.default.fetch`, the Worker
 * itself inside the same workerd, with its real R2 bucket and KV namespace behind it.
 */
import { exports } from "cloudflare:workers";
import { expect } from "vitest";
import type { Digest } from "../../../core/oci/digest.ts";
import type { RegistryTarget } from "../../helpers/images/push.ts";
import { digestOf } from "./bytes.ts";

export const ORIGIN = "http://registry.test";

/** Any path (`/v2/...`) or absolute URL (a Location the registry sent) becomes a request to the Worker. */
export function call(pathOrUrl: string, init?: RequestInit): Promise<Response> {
  return exports.default.fetch(new URL(pathOrUrl, ORIGIN).toString(), init);
}

/** The Worker as a target for the test-image builder's pushes (test/helpers/images/), one blob at a time. */
export const worker: RegistryTarget = { fetch: (path, init) => call(path, init), concurrency: 1 };

/** A repository name no other test uses, so tests never see each other's state. */
export function uniqueRepo(prefix: string): string {
  return `${prefix}/${crypto.randomUUID().slice(0, 8)}`;
}

/** Adds query parameters to an upload Location the way the reference builder does: `&` if it already has a query. */
export function withParams(location: string, params: Record<string, string>): string {
  const query = Object.entries(params)
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  return `${location}${location.includes("?") ? "&" : "?"}${query}`;
}

export interface OpenUpload {
  location: string;
  uuid: string;
}

export interface PushedManifest {
  digest: Digest;
  response: Response;
}

export const registry = {
  /** Pushes a blob monolithically (POST ?digest= with the body) and checks the 201. */
  async pushBlob(repo: string, bytes: Uint8Array): Promise<Digest> {
    const digest = await digestOf(bytes);
    const res = await call(`/v2/${repo}/blobs/uploads/?digest=${digest}`, {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream" },
      body: bytes,
    });
    await expectStatus(res, 201);
    expect(res.headers.get("Docker-Content-Digest")).toBe(digest);
    return digest;
  },

  /** Opens an upload session and checks the 202 that answers it. */
  async openUpload(repo: string): Promise<OpenUpload> {
    const res = await call(`/v2/${repo}/blobs/uploads/`, { method: "POST" });
    await expectStatus(res, 202);
    return uploadOf(res);
  },

  /** PUTs manifest bytes by tag or digest; the caller checks the answer. */
  async putManifest(repo: string, reference: string, bytes: Uint8Array, mediaType: string): Promise<Response> {
    return call(`/v2/${repo}/manifests/${reference}`, {
      method: "PUT",
      headers: { "Content-Type": mediaType },
      body: bytes,
    });
  },

  /** PUTs a manifest and checks the 201 with its digest. */
  async pushManifest(repo: string, reference: string, bytes: Uint8Array, mediaType: string): Promise<PushedManifest> {
    const digest = await digestOf(bytes);
    const response = await registry.putManifest(repo, reference, bytes, mediaType);
    await expectStatus(response, 201);
    expect(response.headers.get("Docker-Content-Digest")).toBe(digest);
    return { digest, response };
  },

  blob(repo: string, digest: string, init?: RequestInit): Promise<Response> {
    return call(`/v2/${repo}/blobs/${digest}`, init);
  },

  manifest(repo: string, reference: string, init?: RequestInit): Promise<Response> {
    return call(`/v2/${repo}/manifests/${reference}`, init);
  },

  tags(repo: string, query = ""): Promise<Response> {
    return call(`/v2/${repo}/tags/list${query}`);
  },
};

/** The session a 202 names: its absolute Location and the UUID in it. */
export function uploadOf(res: Response): OpenUpload {
  const location = res.headers.get("Location") ?? "";
  const m = /^http:\/\/registry\.test\/v2\/.+\/blobs\/uploads\/([0-9a-f-]{36})$/.exec(location);
  expect(m, `an absolute upload Location, got "${location}"`).not.toBeNull();
  const uuid = m![1]!;
  expect(res.headers.get("Docker-Upload-UUID")).toBe(uuid);
  return { location, uuid };
}

/** Asserts a status, showing the body when it is wrong (an OCI error says why). */
export async function expectStatus(res: Response, status: number): Promise<void> {
  if (res.status !== status) {
    expect.fail(`expected ${status}, got ${res.status}: ${await res.clone().text()}`);
  }
}

export interface OciError {
  code: string;
  message: string;
  detail?: unknown;
}

/**
 * Asserts an OCI error answer: the status, a JSON body of `{"errors":[...]}` whose first entry has
 * `code`, and the registry's API version header. Returns the entry for further checks.
 */
export async function expectOciError(res: Response, status: number, code: string): Promise<OciError> {
  const text = await res.text();
  expect(res.status, `status for ${text}`).toBe(status);
  expect(res.headers.get("Content-Type")).toBe("application/json");
  expect(res.headers.get("Docker-Distribution-API-Version")).toBe("registry/2.0");
  const body = JSON.parse(text) as { errors: OciError[] };
  expect(body.errors).toHaveLength(1);
  const entry = body.errors[0]!;
  expect(entry.code).toBe(code);
  expect(typeof entry.message).toBe("string");
  expect(entry.message.length).toBeGreaterThan(0);
  return entry;
}

export async function bytesOf(res: Response): Promise<Uint8Array> {
  return new Uint8Array(await res.arrayBuffer());
}
