/** Small HTTP helpers the routes share: repository names from the path, lengths, ranges, Link headers. */
import type { Context } from "hono";
import { RegistryError } from "../core/oci/errors.ts";
import { validateName } from "../core/oci/reference.ts";
import type { AppEnv } from "./env.ts";

// The range parsers live in a module of their own, free of Workers types, for the unit tests.
export { parseContentRange, parseRange } from "./http-ranges.ts";

/** The repository named in the path, validated against the spec grammar before any key is built. */
export function repoName(c: Context<AppEnv>): string {
  const name = validateName(c.req.param("name") ?? "");
  // Hono decodes path parameters, so `a%2fb` arrives here as `a/b`. A valid name never needs
  // percent-encoding: one that does not follow /v2/ verbatim in the raw path was smuggled in encoded
  // (and the auth layer, which reads the raw path, would have judged a different name).
  if (!new URL(c.req.url).pathname.startsWith(`/v2/${name}/`)) {
    throw new RegistryError("NAME_INVALID", "repository names are never percent-encoded", { name });
  }
  const method = c.req.method;
  if (method !== "GET" && method !== "HEAD") {
    const mirror = c.var.store.mirror(name);
    if (mirror) {
      throw new RegistryError("DENIED", `${name} is a read-only mirror of ${mirror.remoteName} on ${mirror.host}`, {
        name,
      });
    }
  }
  return name;
}

/** Content-Length as a number, or undefined when the body is streamed without one. */
export function contentLength(req: Request): number | undefined {
  const h = req.headers.get("content-length");
  if (h === null) return undefined;
  if (!/^\d+$/.test(h.trim())) throw new RegistryError("SIZE_INVALID", "malformed Content-Length", { value: h });
  return Number(h);
}

/** Whether the request carries a body: a positive Content-Length, or a streamed (chunked) body. */
export function hasBody(req: Request): boolean {
  const len = contentLength(req);
  if (len !== undefined) return len > 0;
  return req.body !== null;
}

/** Absolute URL on this registry: the reference builder insists on absolute Locations, and every client accepts them. */
export function absolute(c: Context<AppEnv>, path: string): string {
  return new URL(path, c.req.url).toString();
}

/** Upload progress as the spec reports it: the inclusive range of bytes received, "0-0" when none. */
export function uploadRange(offset: number): string {
  return `0-${Math.max(0, offset - 1)}`;
}

export interface PageParams {
  n: number;
  last?: string;
}

/** `n` and `last` for tag and catalog listing. */
export function pageParams(c: Context<AppEnv>, defaultN: number, maxN: number): PageParams {
  const nRaw = c.req.query("n");
  let n = defaultN;
  if (nRaw !== undefined) {
    if (!/^\d{1,9}$/.test(nRaw)) {
      throw new RegistryError("PAGINATION_NUMBER_INVALID", "n must be a non-negative integer", {
        n: nRaw.slice(0, 20),
      });
    }
    n = Math.min(Number(nRaw), maxN);
  }
  const last = c.req.query("last");
  return last === undefined || last === "" ? { n } : { n, last };
}

/** RFC 5988 Link header for the next page. */
export function nextLink(path: string, n: number, last: string): string {
  return `<${path}?n=${n}&last=${encodeURIComponent(last)}>; rel="next"`;
}
