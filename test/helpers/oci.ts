/**
 * Small OCI distribution calls made with fetch, and the assertion every bad-input test makes:
 * the answer is a 4xx carrying OCI error JSON with the expected code.
 */
import { createHash } from "node:crypto";
import { expect } from "vitest";
import type { Digest } from "../../core/oci/digest.ts";
import { parseErrorBody, type ErrorCode } from "../../core/oci/errors.ts";
import type { RawResponse } from "./raw-http.ts";

export function sha256Of(data: Uint8Array | string): Digest {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** A response reduced to what assertions need, from fetch or from a raw socket. */
export interface Answer {
  status: number;
  headers: Headers | Record<string, string>;
  body: string;
}

export async function answerOf(res: Response): Promise<Answer> {
  return { status: res.status, headers: res.headers, body: await res.text() };
}

export function header(a: Answer | RawResponse, name: string): string | null {
  return a.headers instanceof Headers ? a.headers.get(name) : (a.headers[name.toLowerCase()] ?? null);
}

/**
 * Asserts a client error: the status is one of `statuses` (never a 5xx) and, for answers with a
 * body, the OCI error JSON's first code is one of `codes`.
 */
export function expectOciError(
  a: Answer | RawResponse,
  statuses: number | number[],
  codes: ErrorCode | ErrorCode[],
): void {
  const allowedStatuses = Array.isArray(statuses) ? statuses : [statuses];
  const allowedCodes: string[] = Array.isArray(codes) ? codes : [codes];
  const what = `${a.status} ${a.body.slice(0, 300)}`;
  expect(a.status, what).toBeLessThan(500);
  expect(allowedStatuses, what).toContain(a.status);
  const errors = parseErrorBody(a.body);
  expect(errors, `not OCI error JSON: ${what}`).toBeDefined();
  expect(allowedCodes, what).toContain(errors?.[0]?.code);
  expect(header(a, "content-type") ?? "", what).toMatch(/^application\/json/);
}

/** Pushes a blob monolithically (POST ?digest= with the body) and returns its digest. */
export async function pushBlob(base: string, repo: string, bytes: Uint8Array): Promise<Digest> {
  const digest = sha256Of(bytes);
  const res = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream" },
    body: bytes,
  });
  if (res.status !== 201) throw new Error(`pushing ${digest} to ${repo}: ${res.status} ${await res.text()}`);
  return digest;
}

/** Opens an upload session and returns its absolute Location. */
export async function openUpload(base: string, repo: string): Promise<string> {
  const res = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: "POST" });
  await res.body?.cancel();
  const location = res.headers.get("location");
  if (res.status !== 202 || !location) throw new Error(`opening an upload in ${repo}: ${res.status}`);
  return new URL(location, base).toString();
}

/** `?digest=` appended to an upload Location, which may already carry a query. */
export function withQuery(location: string, params: Record<string, string>): string {
  const u = new URL(location);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}
