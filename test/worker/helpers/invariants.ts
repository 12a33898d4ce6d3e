/**
 * The storage invariants of docs/storage.md as checks on a MemoryBucket's contents, shared by the
 * interleaving harness (storage-interleavings.test.ts) and the fault matrix (storage-faults.test.ts).
 * They read the bucket itself, never through a request, so a failing view cannot hide anything.
 */
import { expect } from "vitest";
import type { Digest } from "../../../core/oci/digest.ts";
import { blobInfoFromMeta } from "../../../worker/storage/blobs.ts";
import { dataIdOf, digestFromKey, keys } from "../../../worker/storage/keys.ts";
import type { MemoryBucket } from "../../../worker/storage/memory-bucket.ts";
import type { UploadSession } from "../../../worker/storage/uploads.ts";

const isBlobRef = (key: string): boolean => key.startsWith(keys.blobsPrefix) || key.includes("/_blobs/");

/** Every data object is named by a record, a link or an upload session: nothing leaked. */
export async function noOrphanData(bucket: MemoryBucket): Promise<void> {
  const named = new Set<string>();
  for (const key of bucket.keys()) {
    if (key.startsWith(keys.uploadsPrefix)) named.add(key.slice(keys.uploadsPrefix.length));
    if (!isBlobRef(key)) continue;
    const loc = (await bucket.head(key))?.customMetadata?.loc;
    const id = loc && dataIdOf(loc);
    if (id) named.add(id);
  }
  const orphans = bucket.keys().filter((k) => k.startsWith(keys.dataPrefix) && !named.has(dataIdOf(k)!));
  expect(orphans, "data objects nothing names").toEqual([]);
}

/** I2: every record and every live link names bytes that exist (for a piece table: every piece too). */
export async function namesOnlyStoredBytes(bucket: MemoryBucket): Promise<void> {
  for (const key of bucket.keys()) {
    if (!isBlobRef(key)) continue;
    const head = await bucket.head(key);
    const info = blobInfoFromMeta(digestFromKey(key), head?.customMetadata);
    if (!info) continue;
    const target = await bucket.get(info.loc);
    expect(target, `${key} names ${info.loc}`).not.toBeNull();
    if (info.pieces <= 1) continue;
    for (const piece of (await target!.json()) as { key: string }[]) {
      expect(await bucket.head(piece.key), `${key} names piece ${piece.key}`).not.toBeNull();
    }
  }
}

/** I5: every piece an upload session lists is stored whole. */
export async function sessionsHoldTheirPieces(bucket: MemoryBucket): Promise<void> {
  for (const key of bucket.keys().filter((k) => k.startsWith(keys.uploadsPrefix))) {
    const session = (await (await bucket.get(key))!.json()) as UploadSession;
    for (const piece of session.pieces) {
      expect((await bucket.head(piece.key))?.size, `${key} lists ${piece.key}`).toBe(piece.size);
    }
  }
}

/** I6: every tag names a manifest stored in its repository. */
export async function tagsNameStoredManifests(bucket: MemoryBucket): Promise<void> {
  for (const key of bucket.keys().filter((k) => k.includes("/_tags/"))) {
    const digest = (await bucket.head(key))?.customMetadata?.digest;
    const repo = key.slice(keys.reposPrefix.length, key.indexOf("/_tags/"));
    expect(await bucket.head(keys.manifest(repo, digest as Digest)), `${key} names ${digest}`).not.toBeNull();
  }
}

/** What a request or collection left behind at any moment: I2, I5 and I6. */
export async function storageConsistent(bucket: MemoryBucket): Promise<void> {
  await namesOnlyStoredBytes(bucket);
  await sessionsHoldTheirPieces(bucket);
  await tagsNameStoredManifests(bucket);
}

/** After a collection past every note's expiry: no intent note is left behind. */
export function noIntentNotes(bucket: MemoryBucket): void {
  expect(bucket.keys().filter((k) => k.startsWith(keys.gcIntentPrefix))).toEqual([]);
}
