/**
 * The OCI distribution error table: every code the registry can answer with, declared once with
 * its HTTP status. Storage and routes throw `RegistryError`; one place (worker/app.ts onError)
 * renders it as `{"errors":[{code,message,detail}]}`. The CLI reads the same table to explain
 * what a registry said.
 */
export const ERROR_CODES = {
  BLOB_UNKNOWN: { status: 404, message: "blob unknown to registry" },
  BLOB_UPLOAD_INVALID: { status: 400, message: "blob upload invalid" },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: "blob upload unknown to registry" },
  DIGEST_INVALID: { status: 400, message: "provided digest did not match uploaded content" },
  MANIFEST_BLOB_UNKNOWN: { status: 404, message: "manifest references a manifest or blob unknown to registry" },
  MANIFEST_INVALID: { status: 400, message: "manifest invalid" },
  MANIFEST_UNKNOWN: { status: 404, message: "manifest unknown to registry" },
  NAME_INVALID: { status: 400, message: "invalid repository name" },
  NAME_UNKNOWN: { status: 404, message: "repository name not known to registry" },
  SIZE_INVALID: { status: 400, message: "provided length did not match content length" },
  UNAUTHORIZED: { status: 401, message: "authentication required" },
  DENIED: { status: 403, message: "requested access to the resource is denied" },
  UNSUPPORTED: { status: 415, message: "the operation is unsupported" },
  TOOMANYREQUESTS: { status: 429, message: "too many requests" },
  // Not in the spec's table, but what distribution answers for these cases.
  RANGE_INVALID: { status: 416, message: "requested range not satisfiable" },
  TAG_INVALID: { status: 400, message: "manifest tag did not match URI" },
  PAGINATION_NUMBER_INVALID: { status: 400, message: "invalid number of results requested" },
  PAYLOAD_TOO_LARGE: { status: 413, message: "request body too large" },
  // A manifest push by digest with more `tag` parameters than one request may write (the spec's 414).
  TOO_MANY_TAGS: { status: 414, message: "too many tags in one request" },
  METHOD_UNKNOWN: { status: 405, message: "method not allowed for this resource" },
  NOT_FOUND: { status: 404, message: "no such endpoint" },
  INTERNAL: { status: 500, message: "internal error" },
  // The registry cannot serve anyone right now, e.g. its auth secrets are missing (it fails closed).
  UNAVAILABLE: { status: 503, message: "service unavailable" },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The one exception type every layer throws for an answer the client should see. */
export class RegistryError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: unknown;
  /** Extra response headers, e.g. WWW-Authenticate on 401 or Range on 416. */
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message?: string, detail?: unknown, headers: Record<string, string> = {}) {
    super(message ?? ERROR_CODES[code].message);
    this.name = "RegistryError";
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.detail = detail;
    this.headers = headers;
  }

  toJSON(): { errors: { code: string; message: string; detail?: unknown }[] } {
    const entry: { code: string; message: string; detail?: unknown } = { code: this.code, message: this.message };
    if (this.detail !== undefined) entry.detail = this.detail;
    return { errors: [entry] };
  }
}

/** Parses an OCI error body; returns undefined for anything else. Used by the CLI's client. */
export function parseErrorBody(text: string): { code: string; message: string; detail?: unknown }[] | undefined {
  try {
    const body = JSON.parse(text) as { errors?: unknown };
    if (!Array.isArray(body.errors)) return undefined;
    return body.errors.filter(
      (e): e is { code: string; message: string; detail?: unknown } =>
        typeof e === "object" && e !== null && typeof (e as { code?: unknown }).code === "string",
    );
  } catch {
    return undefined;
  }
}
