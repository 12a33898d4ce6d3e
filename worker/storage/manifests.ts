/**
 * Manifests and tags. A manifest is kept per repository, byte for byte as pushed, with its media
 * type as the object's Content-Type; a tag is a small object naming a digest.
 */
import type { Digest } from "../../core/oci/digest.ts";
import type { Descriptor } from "../../core/oci/manifest.ts";
import type { Reference } from "../../core/oci/reference.ts";
import type { Bucket } from "./bucket.ts";
import type { Clock } from "./clock.ts";
import { keepWritten } from "./intent.ts";
import { keys } from "./keys.ts";

export interface StoredManifest {
  digest: Digest;
  mediaType: string;
  bytes: Uint8Array;
}

export interface ManifestHead {
  digest: Digest;
  mediaType: string;
  size: number;
}

export interface TagEntry {
  tag: string;
  uploaded: Date;
}

export interface ReferrerRecord {
  subject: Digest;
  descriptor: Descriptor;
}

export class ManifestStore {
  private readonly bucket: Bucket;
  private readonly clock: Clock;
  constructor(bucket: Bucket, clock: Clock) {
    this.bucket = bucket;
    this.clock = clock;
  }

  /** Resolves a tag to a digest (null when the tag does not exist). */
  async resolveTag(repo: string, tag: string): Promise<Digest | null> {
    const obj = await this.bucket.head(keys.tag(repo, tag));
    const d = obj?.customMetadata?.digest;
    return d ? (d as Digest) : null;
  }

  async digestOf(repo: string, ref: Reference): Promise<Digest | null> {
    return ref.kind === "digest" ? ref.digest : this.resolveTag(repo, ref.tag);
  }

  async head(repo: string, digest: Digest): Promise<ManifestHead | null> {
    const obj = await this.bucket.head(keys.manifest(repo, digest));
    if (!obj) return null;
    return { digest, mediaType: obj.httpMetadata?.contentType ?? "", size: obj.size };
  }

  async get(repo: string, digest: Digest): Promise<StoredManifest | null> {
    const obj = await this.bucket.get(keys.manifest(repo, digest));
    if (!obj) return null;
    return { digest, mediaType: obj.httpMetadata?.contentType ?? "", bytes: new Uint8Array(await obj.arrayBuffer()) };
  }

  async exists(repo: string, digest: Digest): Promise<boolean> {
    return (await this.bucket.head(keys.manifest(repo, digest))) !== null;
  }

  /**
   * Stores a manifest revision and its referrer record. Tag it afterwards, so that no reader sees
   * a tag whose manifest is missing. A collection may be sweeping the same bytes, pushed before
   * and unreferenced since: after writing, the intent notes are read (worker/storage/intent.ts),
   * and what a collection named is written again once it is done.
   */
  async put(repo: string, m: StoredManifest, referrer: ReferrerRecord | undefined): Promise<void> {
    const writes: [string, () => Promise<unknown>][] = [
      [
        keys.manifest(repo, m.digest),
        () =>
          this.bucket.put(keys.manifest(repo, m.digest), m.bytes, {
            httpMetadata: { contentType: m.mediaType },
            customMetadata: referrer ? { subject: referrer.subject } : {},
          }),
      ],
    ];
    if (referrer) {
      const key = keys.referrer(repo, referrer.subject, m.digest);
      writes.push([
        key,
        () =>
          this.bucket.put(key, JSON.stringify(referrer.descriptor), {
            httpMetadata: { contentType: "application/json" },
          }),
      ]);
    }
    for (const [, write] of writes) await write();
    for (const [key, write] of writes) await keepWritten(this.bucket, this.clock, key, write);
  }

  async tag(repo: string, tag: string, digest: Digest): Promise<void> {
    await this.bucket.put(keys.tag(repo, tag), digest, { customMetadata: { digest } });
  }

  async deleteTag(repo: string, tag: string): Promise<boolean> {
    const key = keys.tag(repo, tag);
    if (!(await this.bucket.head(key))) return false;
    await this.bucket.delete(key);
    return true;
  }

  /** Deletes a manifest revision with every tag that points at it and its referrer record. */
  async delete(repo: string, digest: Digest): Promise<boolean> {
    const obj = await this.bucket.head(keys.manifest(repo, digest));
    if (!obj) return false;
    const doomed: string[] = [];
    for await (const tag of this.listAll(keys.tagsPrefix(repo), true)) {
      if (tag.customMetadata?.digest === digest) doomed.push(tag.key);
    }
    const subject = obj.customMetadata?.subject as Digest | undefined;
    if (subject) doomed.push(keys.referrer(repo, subject, digest));
    doomed.push(keys.manifest(repo, digest));
    for (let i = 0; i < doomed.length; i += 1000) await this.bucket.delete(doomed.slice(i, i + 1000));
    return true;
  }

  /**
   * Tags, newest first by when they were last written (their object's upload time), for the web
   * view. At most `max` are read and sorted; `complete` says whether that was all of them.
   */
  async tagsNewestFirst(repo: string, max = 5000): Promise<{ tags: TagEntry[]; complete: boolean }> {
    const prefix = keys.tagsPrefix(repo);
    const tags: TagEntry[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.bucket.list({ prefix, ...(cursor ? { cursor } : {}) });
      for (const o of page.objects) tags.push({ tag: o.key.slice(prefix.length), uploaded: o.uploaded });
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor && tags.length < max);
    tags.sort((a, b) => b.uploaded.getTime() - a.uploaded.getTime() || (a.tag < b.tag ? -1 : 1));
    return { tags, complete: cursor === undefined };
  }

  /** Tags in lexical order, after `last`, at most `n`. */
  async listTags(repo: string, n: number, last?: string): Promise<{ tags: string[]; more: boolean }> {
    const prefix = keys.tagsPrefix(repo);
    return listNames(this.bucket, prefix, n, last === undefined ? undefined : prefix + last);
  }

  async referrers(repo: string, subject: Digest): Promise<Descriptor[]> {
    const out: Descriptor[] = [];
    const entries: string[] = [];
    for await (const o of this.listAll(keys.referrersPrefix(repo, subject), false)) entries.push(o.key);
    await Promise.all(
      entries.map(async (key) => {
        const obj = await this.bucket.get(key);
        if (obj) out.push((await obj.json()) as Descriptor);
      }),
    );
    // Deterministic order, so that repeated GETs give the same bytes.
    return out.sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  }

  private async *listAll(prefix: string, withMeta: boolean): AsyncGenerator<R2Object> {
    let cursor: string | undefined;
    do {
      const page = await this.bucket.list({
        prefix,
        ...(cursor ? { cursor } : {}),
        ...(withMeta ? { include: ["customMetadata" as const] } : {}),
      });
      yield* page.objects;
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
  }
}

/**
 * A page of names under `prefix` (tags, repositories), lexically after `startAfter`. Asks R2 for one
 * more than wanted, to know whether a next page exists without a second call.
 */
export async function listNames(
  bucket: Bucket,
  prefix: string,
  n: number,
  startAfter?: string,
): Promise<{ tags: string[]; more: boolean }> {
  const names: string[] = [];
  let cursor: string | undefined;
  while (names.length <= n) {
    const page = await bucket.list({
      prefix,
      limit: Math.min(1000, n + 1 - names.length),
      ...(cursor ? { cursor } : startAfter ? { startAfter } : {}),
    });
    for (const o of page.objects) names.push(o.key.slice(prefix.length));
    if (!page.truncated) break;
    cursor = page.cursor;
  }
  if (n === 0) return { tags: [], more: names.length > 0 };
  return { tags: names.slice(0, n), more: names.length > n };
}
