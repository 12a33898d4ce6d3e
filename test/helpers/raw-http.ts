/**
 * HTTP/1.1 requests written byte by byte on a TCP socket, for what fetch refuses to send: a
 * Content-Length that lies about the body, a path with literal `..` segments that a URL parser
 * would resolve, a body cut off mid-way.
 */
import { connect } from "node:net";

export interface RawRequest {
  method: string;
  /** Sent verbatim on the request line. */
  path: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  /** Close our sending side after the body (the server sees EOF, possibly mid-body). */
  halfClose?: boolean;
  timeoutMs?: number;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends the request and reads one response. Resolves `undefined` when the server closes the
 * connection without answering, which is a legitimate reaction to a truncated body.
 */
export function rawRequest(port: number, req: RawRequest): Promise<RawResponse | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (value: RawResponse | undefined, err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(
      () => finish(undefined, new Error(`no answer to ${req.method} ${req.path} within ${req.timeoutMs ?? 15_000} ms`)),
      req.timeoutMs ?? 15_000,
    );
    socket.on("connect", () => {
      const headers = { Host: `127.0.0.1:${port}`, Connection: "close", ...req.headers };
      const head = `${req.method} ${req.path} HTTP/1.1\r\n${Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join("")}\r\n`;
      socket.write(head);
      if (req.body !== undefined) socket.write(req.body);
      if (req.halfClose) socket.end();
    });
    socket.on("data", (b: Buffer) => {
      chunks.push(b);
      const parsed = parseResponse(Buffer.concat(chunks));
      if (parsed) finish(parsed);
    });
    socket.on("end", () => finish(parseResponse(Buffer.concat(chunks), true)));
    socket.on("error", (e: NodeJS.ErrnoException) => {
      // A reset after a truncated upload is the server hanging up on us: no answer.
      if (e.code === "ECONNRESET" || e.code === "EPIPE") finish(parseResponse(Buffer.concat(chunks), true));
      else finish(undefined, e);
    });
  });
}

/** A complete response from the bytes so far, or undefined if more must come. */
function parseResponse(buf: Buffer, atEof = false): RawResponse | undefined {
  const headEnd = buf.indexOf("\r\n\r\n");
  if (headEnd < 0) return undefined;
  const [statusLine = "", ...lines] = buf.subarray(0, headEnd).toString("latin1").split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  if (!status) throw new Error(`not an HTTP response: ${statusLine}`);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(":");
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const rest = buf.subarray(headEnd + 4);
  if (headers["transfer-encoding"]?.toLowerCase() === "chunked") {
    const body = dechunk(rest);
    return body === undefined
      ? atEof
        ? { status, headers, body: rest.toString("utf8") }
        : undefined
      : { status, headers, body };
  }
  const length = headers["content-length"];
  if (length !== undefined) {
    if (rest.byteLength < Number(length)) return atEof ? { status, headers, body: rest.toString("utf8") } : undefined;
    return { status, headers, body: rest.subarray(0, Number(length)).toString("utf8") };
  }
  return atEof ? { status, headers, body: rest.toString("utf8") } : undefined;
}

function dechunk(buf: Buffer): string | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = buf.indexOf("\r\n", at);
    if (lineEnd < 0) return undefined;
    const size = parseInt(buf.subarray(at, lineEnd).toString("latin1"), 16);
    if (Number.isNaN(size)) return undefined;
    if (size === 0) return Buffer.concat(parts).toString("utf8");
    if (buf.byteLength < lineEnd + 2 + size + 2) return undefined;
    parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}
