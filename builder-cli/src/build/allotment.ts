/**
 * Builds one allotment blob in a single streamed pass: files -> tar -> (diffid hash) ->
 * compressor -> (digest hash) -> file. Nothing is held in memory beyond a few chunks; the blob
 * lands in the cache under its digest only once it is complete.
 */
import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import type { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { layerMediaTypeFor, type Compression } from "../../../core/oci/media-types.ts";
import type { BuildCache, CachedAllotment } from "../store/cache.ts";
import { chooseAuto, compressorStages, type CompressionOptions } from "./compression.ts";
import type { TarEntry } from "./entries.ts";
import { HashingStream } from "./hashing.ts";
import { packEntries, type PackHooks } from "./tar.ts";

export interface BuiltAllotment extends CachedAllotment {
  compression: Compression;
}

export async function buildAllotment(
  entries: readonly TarEntry[],
  compression: Required<CompressionOptions>,
  cache: BuildCache,
  hooks: PackHooks = {},
): Promise<BuiltAllotment> {
  const algo: Compression = compression.setting === "auto" ? await chooseAuto(entries) : compression.setting;
  const tmp = await cache.tempBlobPath();
  const diffid = new HashingStream();
  const stages: (Readable | Transform | NodeJS.WritableStream)[] = [packEntries(entries, hooks), diffid];
  // Uncompressed, the blob is the tar: one hash serves as both digest and diffid.
  const blob = algo === "none" ? diffid : new HashingStream();
  if (algo !== "none") stages.push(...compressorStages(algo, compression.level), blob);
  stages.push(createWriteStream(tmp));
  try {
    await pipeline(stages as unknown as [Readable, ...Transform[], NodeJS.WritableStream]);
    const diffidDigest = diffid.digest();
    const digest = blob === diffid ? diffidDigest : blob.digest();
    await rename(tmp, cache.blobPath(digest));
    return { digest, diffid: diffidDigest, size: blob.bytes, mediaType: layerMediaTypeFor(algo), compression: algo };
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
