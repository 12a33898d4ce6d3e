/**
 * The in-memory blob sink: every blob kept as bytes, digests by WebCrypto, gzip by the runtime's
 * CompressionStream (at its own level), zstd as a frame of raw blocks. Pure, so it runs in
 * workerd, where the tests push what it holds through the Worker, and in Node.
 */
import { digestWith, sha256, type DigestAlgorithm } from "../../../core/oci/digest.ts";
import { tarChunks } from "./tar.ts";
import type { BlobSink, FileSpec, MemoryBlob, Tar, TarOptions } from "./types.ts";

export class MemoryBlobs implements BlobSink<MemoryBlob> {
  async put(bytes: Uint8Array, mediaType: string, algorithm: DigestAlgorithm): Promise<MemoryBlob> {
    return memoryBlob(bytes, mediaType, await digestWith(algorithm, bytes));
  }

  async putTar(
    files: readonly FileSpec[],
    options: TarOptions,
    mediaType: string,
    algorithm: DigestAlgorithm,
  ): Promise<Tar<MemoryBlob>> {
    const tar = concat([...tarChunks(files)]);
    const stored =
      options.compression === "gzip" ? await gzip(tar) : options.compression === "zstd" ? zstdFrame(tar) : tar;
    return { blob: await this.put(stored, mediaType, algorithm), diffId: await sha256(tar) };
  }
}

function memoryBlob(bytes: Uint8Array, mediaType: string, digest: MemoryBlob["digest"]): MemoryBlob {
  return {
    descriptor: { mediaType, digest, size: bytes.byteLength },
    digest,
    size: bytes.byteLength,
    bytes,
    read: () => Promise.resolve(bytes),
  };
}

export function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Response(bytes as Uint8Array<ArrayBuffer>).body!.pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Raw blocks carry at most this much each (the format's largest block). */
const ZSTD_BLOCK_MAX = 128 * 1024;

/**
 * A valid zstd frame that stores `bytes` in raw (uncompressed) blocks: any zstd reader unpacks it,
 * and workerd has no zstd compressor. Single segment, so the 8-byte content size replaces the
 * window descriptor; no checksum.
 */
export function zstdFrame(bytes: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(bytes.byteLength / ZSTD_BLOCK_MAX));
  const out = new Uint8Array(4 + 1 + 8 + blocks * 3 + bytes.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0xfd2fb528, true);
  out[4] = (3 << 6) | (1 << 5); // content size in 8 bytes, single segment
  view.setBigUint64(5, BigInt(bytes.byteLength), true);
  let at = 13;
  for (let b = 0; b < blocks; b++) {
    const chunk = bytes.subarray(b * ZSTD_BLOCK_MAX, (b + 1) * ZSTD_BLOCK_MAX);
    const last = b === blocks - 1 ? 1 : 0;
    const head = (chunk.byteLength << 3) | last; // block type 0: raw
    out[at] = head & 0xff;
    out[at + 1] = (head >> 8) & 0xff;
    out[at + 2] = (head >> 16) & 0xff;
    out.set(chunk, at + 3);
    at += 3 + chunk.byteLength;
  }
  return out;
}
