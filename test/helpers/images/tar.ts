/**
 * Deterministic ustar archives for test layers, written as a stream of chunks so that a layer of
 * gigabytes of random data never sits in memory: every parent directory once before its children,
 * files in path order, uid/gid 0, no user or group names, a fixed mtime. Pure (WebCrypto only),
 * so workerd and Node build the same tars.
 */
import type { FileSpec } from "./types.ts";

export const TAR_MTIME = new Date("2026-01-01T00:00:00Z");

const BLOCK = 512;
/** crypto.getRandomValues fills at most 64 KiB per call. */
const RANDOM_FILL_MAX = 65_536;
/** Random file content is produced in chunks of this size. */
const RANDOM_CHUNK = 1 << 20;
/** The largest size an 11-digit octal size field holds. */
const MAX_SIZE = 8 ** 11 - 1;

/** The files in the order a tar of them lists them. */
export function tarOrder(files: readonly FileSpec[]): FileSpec[] {
  return [...files].sort((a, b) => a.path.localeCompare(b.path));
}

/** A path as it lands in the filesystem: no leading slash. */
export function normalizePath(path: string): string {
  return path.replace(/^\/+/, "");
}

/** The regular files a tar of `files` holds, sorted. */
export function tarFiles(files: readonly FileSpec[]): string[] {
  return files.map((f) => normalizePath(f.path)).sort();
}

/** The archive of `files` as a stream of chunks, end-of-archive blocks included. */
export function* tarChunks(files: readonly FileSpec[]): Generator<Uint8Array> {
  const dirs = new Set<string>();
  for (const f of tarOrder(files)) {
    const path = normalizePath(f.path);
    const parts = path.split("/").slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join("/");
      if (dirs.has(dir)) continue;
      dirs.add(dir);
      yield header(`${dir}/`, "5", 0o755, 0);
    }
    const body = f.random === undefined ? literal(f.content) : undefined;
    const size = body ? body.byteLength : f.random!;
    yield header(path, "0", f.mode ?? 0o644, size);
    if (body) yield body;
    else yield* randomChunks(size);
    if (size % BLOCK) yield new Uint8Array(BLOCK - (size % BLOCK));
  }
  yield new Uint8Array(2 * BLOCK);
}

function literal(content: string | Uint8Array | undefined): Uint8Array {
  return typeof content === "string" ? new TextEncoder().encode(content) : (content ?? new Uint8Array());
}

function* randomChunks(size: number): Generator<Uint8Array> {
  for (let left = size; left > 0; left -= RANDOM_CHUNK) {
    // A fresh buffer per chunk: a consumer may still hold the previous one.
    const chunk = new Uint8Array(Math.min(left, RANDOM_CHUNK));
    for (let at = 0; at < chunk.byteLength; at += RANDOM_FILL_MAX) {
      crypto.getRandomValues(chunk.subarray(at, Math.min(chunk.byteLength, at + RANDOM_FILL_MAX)));
    }
    yield chunk;
  }
}

/** One ustar header block. A name past 100 bytes is split into the prefix field at a slash. */
function header(path: string, type: "0" | "5", mode: number, size: number): Uint8Array {
  if (size > MAX_SIZE) throw new Error(`${path}: ${size} bytes do not fit a ustar header`);
  const { name, prefix } = splitName(path);
  const block = new Uint8Array(BLOCK);
  const put = (at: number, length: number, text: string): void => {
    const bytes = new TextEncoder().encode(text);
    if (bytes.byteLength > length) throw new Error(`${path}: "${text}" does not fit ${length} bytes of a tar header`);
    block.set(bytes, at);
  };
  const octal = (at: number, length: number, value: number): void =>
    put(at, length, `${value.toString(8).padStart(length - 1, "0")}\0`);
  put(0, 100, name);
  octal(100, 8, mode);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, Math.floor(TAR_MTIME.getTime() / 1000));
  put(148, 8, " ".repeat(8));
  put(156, 1, type);
  put(257, 6, "ustar\0");
  put(263, 2, "00");
  octal(329, 8, 0);
  octal(337, 8, 0);
  put(345, 155, prefix);
  const sum = block.reduce((n, b) => n + b, 0);
  put(148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  return block;
}

function splitName(path: string): { name: string; prefix: string } {
  const length = (s: string): number => new TextEncoder().encode(s).byteLength;
  if (length(path) <= 100) return { name: path, prefix: "" };
  for (let at = path.indexOf("/"); at >= 0; at = path.indexOf("/", at + 1)) {
    const prefix = path.slice(0, at);
    const name = path.slice(at + 1);
    if (length(prefix) <= 155 && length(name) <= 100 && name !== "") return { name, prefix };
  }
  throw new Error(`${path} is too long for a ustar header`);
}
