/**
 * Where an allotment's files land: the paths inside its tar. A plain tar (what `--compression
 * auto` makes of model weights) is walked header to header with positional reads, so a
 * multi-GB allotment costs a few reads; a compressed one is streamed through its decompressor.
 * Directories are left out: the paths a user looks for are files and links.
 */
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import zlib from "node:zlib";
import tar from "tar-stream";
import { sniffCompression } from "../../../core/oci/media-types.ts";

const BLOCK = 512;
/** Header types that are not themselves entries: pax (x, g) and GNU long-name (L, K) records. */
const META_TYPES = new Set(["x", "g", "L", "K"]);
const DIRECTORY = "5";

export async function tarPaths(file: string): Promise<string[]> {
  const fh = await open(file, "r");
  let kind: ReturnType<typeof sniffCompression>;
  try {
    const head = new Uint8Array(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    kind = sniffCompression(head.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
  if (kind === "gzip" || kind === "zstd") return streamedPaths(file, kind);
  return walkPlainTar(file);
}

async function walkPlainTar(file: string): Promise<string[]> {
  const fh = await open(file, "r");
  const paths: string[] = [];
  try {
    const header = Buffer.alloc(BLOCK);
    let offset = 0;
    let longName: string | undefined;
    for (;;) {
      const { bytesRead } = await fh.read(header, 0, BLOCK, offset);
      if (bytesRead < BLOCK || header.every((b) => b === 0)) break;
      const size = parseInt(field(header, 124, 12).trim() || "0", 8);
      if (!Number.isSafeInteger(size) || size < 0) throw new Error(`${file}: not a tar (bad size at ${offset})`);
      const type = field(header, 156, 1) || "0";
      const data = offset + BLOCK;
      if (type === "x" || type === "L") {
        const body = Buffer.alloc(size);
        await fh.read(body, 0, size, data);
        longName = type === "L" ? body.toString("utf8").replace(/\0.*$/s, "") : (paxPath(body) ?? longName);
      } else if (!META_TYPES.has(type)) {
        const prefix = field(header, 345, 155);
        const name = longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
        if (type !== DIRECTORY) paths.push(name.replace(/^\.?\//, ""));
        longName = undefined;
      }
      offset = data + Math.ceil(size / BLOCK) * BLOCK;
    }
  } finally {
    await fh.close();
  }
  return paths;
}

async function streamedPaths(file: string, kind: "gzip" | "zstd"): Promise<string[]> {
  const paths: string[] = [];
  const extract = tar.extract();
  extract.on("entry", (header, stream, next) => {
    if (header.type !== "directory") paths.push(header.name.replace(/^\.?\//, ""));
    stream.on("end", next);
    stream.resume();
  });
  const decompress = kind === "gzip" ? zlib.createGunzip() : zlib.createZstdDecompress();
  await pipeline(createReadStream(file), decompress, extract);
  return paths;
}

/** A NUL-terminated header field. */
function field(header: Buffer, at: number, length: number): string {
  const raw = header.toString("utf8", at, at + length);
  const nul = raw.indexOf("\0");
  return nul >= 0 ? raw.slice(0, nul) : raw;
}

/** The `path` record of a pax header body ("<len> path=<value>\n" records). */
function paxPath(body: Buffer): string | undefined {
  let at = 0;
  while (at < body.length) {
    const space = body.indexOf(0x20, at);
    if (space < 0) break;
    const len = Number(body.toString("utf8", at, space));
    if (!Number.isSafeInteger(len) || len <= 0) break;
    const record = body.toString("utf8", space + 1, at + len - 1);
    if (record.startsWith("path=")) return record.slice(5);
    at += len;
  }
  return undefined;
}
