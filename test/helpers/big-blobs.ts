/**
 * Large blobs, for the serving benchmark (bench/registry.ts) and the opt-in test of huge uploads
 * (test/e2e/registry-huge-upload.test.ts): pushed either in one request (one stored object, or the
 * fewest pieces R2 allows past its single-put limit) or in Content-Range chunks (one piece per
 * chunk), then fetched with curl while workerd's peak memory is read from /proc.
 *
 * Bodies are generated, not kept on disk: a unique random head and then a shared 64 MiB random
 * block repeated, so two blobs of one size never share a digest and nothing of 6 GB is held.
 */
import { createHash, randomBytes } from "node:crypto";
import { request } from "node:http";
import { run } from "./process.ts";
import { cpuSeconds, peakRssDuring } from "./workerd-proc.ts";

const BLOCK = randomBytes(64 * 1024 * 1024);
const HEAD_BYTES = 1024 * 1024;

export interface GeneratedBlob {
  size: number;
  digest: string;
  /** The bytes from `offset`, `length` of them, in chunks. */
  chunks(offset: number, length: number): Generator<Buffer>;
}

export function generatedBlob(size: number): GeneratedBlob {
  const head = randomBytes(HEAD_BYTES);
  function* chunks(offset: number, length: number): Generator<Buffer> {
    let at = offset;
    const end = offset + length;
    while (at < end) {
      let chunk: Buffer;
      if (at < HEAD_BYTES) chunk = head.subarray(at, Math.min(HEAD_BYTES, end));
      else {
        const inBlock = (at - HEAD_BYTES) % BLOCK.byteLength;
        chunk = BLOCK.subarray(inBlock, Math.min(BLOCK.byteLength, inBlock + (end - at), inBlock + 4 * 1024 * 1024));
      }
      at += chunk.byteLength;
      yield chunk;
    }
  }
  const hash = createHash("sha256");
  for (const c of chunks(0, size)) hash.update(c);
  return { size, digest: `sha256:${hash.digest("hex")}`, chunks };
}

interface Sent {
  status: number;
  location: string | undefined;
}

/**
 * One request with a body of known length, written with backpressure, on a connection of its own.
 * Not a pooled keep-alive one: workerd closes a connection idle for 15 s, and generating a blob
 * (hashing it, synchronously) can hold Node's event loop longer than that, so neither Node's own
 * 5 s idle timer nor the server's close is seen before the next request takes that socket and
 * gets `socket hang up` (ECONNRESET). That is what stopped a 6 GB push in one bench run of two.
 */
export function send(
  method: string,
  url: string,
  headers: Record<string, string>,
  body?: Iterable<Buffer>,
): Promise<Sent> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, location: res.headers.location }));
      res.on("error", reject);
    });
    req.on("error", reject);
    void (async () => {
      for (const chunk of body ?? []) {
        if (!req.write(chunk)) await new Promise((r) => req.once("drain", r));
      }
      req.end();
    })();
  });
}

/**
 * Pushes the blob to `repo`: in one request (`chunkBytes` undefined), or in Content-Range PATCHes
 * of `chunkBytes`, closed by an empty PUT.
 */
export async function pushGenerated(
  base: string,
  repo: string,
  blob: GeneratedBlob,
  chunkBytes?: number,
  /** A workerd pid: the close's CPU seconds are then measured and returned. */
  cpuOf?: number,
): Promise<{ closeCpu?: number }> {
  const opened = await send("POST", `${base}/v2/${repo}/blobs/uploads/`, { "Content-Length": "0" });
  if (opened.status !== 202 || !opened.location) throw new Error(`POST upload: ${opened.status}`);
  let location = new URL(opened.location, base).toString();
  const step = chunkBytes ?? blob.size;
  for (let at = 0; at < blob.size; at += step) {
    const length = Math.min(step, blob.size - at);
    const headers: Record<string, string> = {
      "Content-Type": "application/octet-stream",
      "Content-Length": String(length),
    };
    if (chunkBytes !== undefined) headers["Content-Range"] = `${at}-${at + length - 1}`;
    const r = await send("PATCH", location, headers, blob.chunks(at, length));
    if (r.status !== 202 || !r.location) throw new Error(`PATCH at ${at}: ${r.status}`);
    location = new URL(r.location, base).toString();
  }
  const closeUrl = new URL(location);
  closeUrl.searchParams.set("digest", blob.digest);
  const before = cpuOf === undefined ? 0 : cpuSeconds(cpuOf);
  const closed = await send("PUT", closeUrl.toString(), { "Content-Length": "0" });
  if (closed.status !== 201) throw new Error(`PUT close: ${closed.status}`);
  return cpuOf === undefined ? {} : { closeCpu: cpuSeconds(cpuOf) - before };
}

/** Pushes the blob in one POST ?digest= with its body (a monolithic upload, as containerd's PUT). */
export async function pushMonolithic(base: string, repo: string, blob: GeneratedBlob): Promise<void> {
  const url = `${base}/v2/${repo}/blobs/uploads/?digest=${blob.digest}`;
  const headers = { "Content-Type": "application/octet-stream", "Content-Length": String(blob.size) };
  const r = await send("POST", url, headers, blob.chunks(0, blob.size));
  if (r.status !== 201) throw new Error(`POST ?digest=: ${r.status}`);
}

export interface Served {
  firstByteSeconds: number;
  seconds: number;
  mbPerSecond: number;
  /** Peak RSS of the Worker's workerd (with local R2), MB. */
  peakRssMb: number;
}

/** A whole-blob GET by curl (bytes counted, then dropped), with workerd's peak RSS meanwhile. */
export async function serveTimed(url: string, size: number, workerd: number): Promise<Served> {
  const { result, peakMb } = await peakRssDuring([workerd], () =>
    run("curl", [
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code} %{time_starttransfer} %{time_total} %{size_download}",
      url,
    ]),
  );
  const [code, ttfb, total, bytes] = result.stdout.trim().split(" ");
  if (code !== "200" || Number(bytes) !== size) throw new Error(`GET ${url}: ${code}, ${bytes} of ${size} bytes`);
  const seconds = Number(total);
  return {
    firstByteSeconds: Number(ttfb),
    seconds,
    mbPerSecond: size / 1e6 / seconds,
    peakRssMb: peakMb[0]!,
  };
}
