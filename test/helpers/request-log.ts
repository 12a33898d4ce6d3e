/**
 * What the registry was asked, read from the log of `wrangler dev` or `npm start`, which print one
 * line per request once it is answered: `[wrangler:info] GET /v2/repo/blobs/sha256:... 200 OK
 * (12ms)`, or `[registry:info] ...` from `npm start`.
 * Tests use it to check which blobs a client fetched; the benchmark, for the time workerd took.
 */
import { sleep } from "./process.ts";
import type { Registry } from "./wrangler-dev.ts";

export interface LoggedRequest {
  method: string;
  /** Path without the query string (wrangler does not print it). */
  path: string;
  status: number;
  ms: number;
}

const LINE_RE = /\[(?:wrangler|registry):info\] ([A-Z]+) (\S+) (\d{3}) [^(]*\((\d+)ms\)/;

export function parseRequestLog(text: string): LoggedRequest[] {
  const out: LoggedRequest[] = [];
  for (const line of text.split("\n")) {
    const m = LINE_RE.exec(line);
    if (m) out.push({ method: m[1]!, path: m[2]!, status: Number(m[3]), ms: Number(m[4]) });
  }
  return out;
}

/** Where the log ends now: pass it to `requestsSince` after the client is done. */
export function logMark(registry: Registry): number {
  return Buffer.byteLength(registry.log());
}

/**
 * The requests logged after `mark`. wrangler writes a line just after it answers, so this waits
 * until the log has stopped growing for a moment before reading it.
 */
export async function requestsSince(registry: Registry, mark: number): Promise<LoggedRequest[]> {
  let size = -1;
  let text = registry.log();
  while (Buffer.byteLength(text) !== size) {
    size = Buffer.byteLength(text);
    await sleep(150);
    text = registry.log();
  }
  return parseRequestLog(Buffer.from(text).subarray(mark).toString("utf8"));
}

/** The digests of the blobs fetched with GET from `repo`, in the order asked, repeats kept. */
export function blobGets(requests: readonly LoggedRequest[], repo: string): string[] {
  const prefix = `/v2/${repo}/blobs/`;
  return requests
    .filter((r) => r.method === "GET" && r.path.startsWith(prefix))
    .map((r) => r.path.slice(prefix.length));
}
