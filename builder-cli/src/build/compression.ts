/**
 * Layer compression. `auto` looks at a sample of the files and stores the allotment as a plain
 * tar unless gzip would shrink it by more than a few percent: model weights barely compress, and
 * gzip costs about 40 MB/s per core, so compressing them spends minutes to save nothing.
 */
import { open } from "node:fs/promises";
import { Transform, type TransformCallback } from "node:stream";
import { promisify } from "node:util";
import zlib from "node:zlib";
import { InputError } from "../spec/errors.ts";
import type { Compression } from "../../../core/oci/media-types.ts";
import type { TarEntry } from "./entries.ts";

export type CompressionSetting = Compression | "auto";
export const COMPRESSION_SETTINGS: readonly CompressionSetting[] = ["auto", "gzip", "zstd", "none"];

export interface CompressionOptions {
  setting: CompressionSetting;
  /** Compressor level; undefined means the compressor's usual default. */
  level?: number;
}

const DEFAULT_LEVEL: Record<"gzip" | "zstd", number> = { gzip: 6, zstd: 3 };
const LEVEL_RANGE: Record<"gzip" | "zstd", [number, number]> = { gzip: [0, 9], zstd: [1, 22] };

/** Checks the user's flags and fills in the level, so that cache keys see the effective values. */
export function resolveCompression(setting: string, level: number | undefined): Required<CompressionOptions> {
  if (!(COMPRESSION_SETTINGS as readonly string[]).includes(setting)) {
    throw new InputError(`--compression must be one of ${COMPRESSION_SETTINGS.join(", ")}, got "${setting}"`);
  }
  const s = setting as CompressionSetting;
  const algo = s === "zstd" ? "zstd" : "gzip";
  if (s === "none") return { setting: s, level: 0 };
  const [lo, hi] = LEVEL_RANGE[algo];
  const l = level ?? DEFAULT_LEVEL[algo];
  if (!Number.isInteger(l) || l < lo || l > hi)
    throw new InputError(`--level for ${algo} must be an integer from ${lo} to ${hi}, got ${l}`);
  return { setting: s, level: l };
}

/** A sample of at most SAMPLE_PIECES x SAMPLE_PIECE bytes, spread evenly over the files. */
const SAMPLE_PIECES = 4;
const SAMPLE_PIECE = 256 * 1024;
/** Store plainly unless the sample shrinks to less than this fraction. */
const AUTO_MAX_RATIO = 0.95;

const deflateRaw = promisify(zlib.deflateRaw);

/** Picks gzip or none for `auto` by compressing the sample at the fastest level. */
export async function chooseAuto(entries: readonly TarEntry[]): Promise<"gzip" | "none"> {
  const files = entries.filter((e) => e.type === "file");
  const total = files.reduce((n, f) => n + f.size, 0);
  // Headers alone (an allotment of directories and tiny files) compress well.
  if (total < SAMPLE_PIECE) return "gzip";
  const pieces: Buffer[] = [];
  for (let k = 0; k < SAMPLE_PIECES; k++) {
    let at = Math.floor((k * total) / SAMPLE_PIECES);
    for (const f of files) {
      if (at < f.size) {
        pieces.push(await readAt(f.source, at, Math.min(SAMPLE_PIECE, f.size - at)));
        break;
      }
      at -= f.size;
    }
  }
  const sample = Buffer.concat(pieces);
  const packed = await deflateRaw(sample, { level: 1 });
  return packed.length < sample.length * AUTO_MAX_RATIO ? "gzip" : "none";
}

async function readAt(file: string, position: number, length: number): Promise<Buffer> {
  const fh = await open(file, "r");
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, position);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** zlib's per-call output size; larger than the default 16 KiB to cut per-chunk overhead. */
const ZLIB_CHUNK = 256 * 1024;

/** The stream stages that compress a tar, to be placed in a pipeline. */
export function compressorStages(algo: "gzip" | "zstd", level: number): Transform[] {
  if (algo === "zstd") {
    return [
      zlib.createZstdCompress({ chunkSize: ZLIB_CHUNK, params: { [zlib.constants.ZSTD_c_compressionLevel]: level } }),
    ];
  }
  return [zlib.createGzip({ level, chunkSize: ZLIB_CHUNK }), new GzipOsByte()];
}

/**
 * zlib writes the host OS into byte 9 of the gzip header (3 on Linux, other values on macOS and
 * Windows). Setting it to 3 everywhere keeps a blob's digest the same on every machine. Node's
 * header already has mtime 0 and no file name.
 */
class GzipOsByte extends Transform {
  private seen = 0;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.seen <= 9 && this.seen + chunk.length > 9) chunk[9 - this.seen] = 3;
    this.seen += chunk.length;
    cb(null, chunk);
  }
}
