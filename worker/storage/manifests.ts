/**
 * Manifests and tags. A manifest is kept per repository, byte for byte as pushed, with its media
 * type as the object's Content-Type; a tag is a small object naming a digest.
 */
import type { Digest } from "../../core/oci/digest.ts";
import type { Descriptor } from "../../core/oci/manifest.ts";
import type { Reference } from "../../core/oci/reference.ts";
import { deleteAll, type Bucket } from "./bucket.ts";
import type { Clock } from "./clock.ts";
import { keepWritten, underIntent } from "./intent.ts";
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
  /**
   * When the subject is a partition the registry derived (not a pushed manifest), the stored
   * manifest it was derived from: the collector keeps the referrer while that source lives.
   */
  derivedFrom?: Digest;
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
   * Stores a manifest revision and its referrer record. Tag it afterwards (`tag`), so that no
   * reader sees a tag whose manifest is missing. A collection or a manifest DELETE may be deleting
   * the same bytes at that moment: after writing, the deletion notes are read
   * (worker/storage/intent.ts), and what was taken is written again.
   */
  async put(repo: string, m: StoredManifest, referrer: ReferrerRecord | undefined): Promise<void> {
    const writes = this.writesOf(repo, m, referrer);
    for (const [, write] of writes) await write();
    for (const [key, write] of writes) await keepWritten(this.bucket, this.clock, key, write);
  }

  /**
   * Points tags at a stored manifest, then makes sure the manifest is still there: a manifest
   * DELETE that ran between `put` and these writes would otherwise leave them naming nothing.
   */
  async tag(
    repo: string,
    tags: readonly string[],
    m: StoredManifest,
    referrer: ReferrerRecord | undefined,
  ): Promise<void> {
    await Promise.all(tags.map((tag) => this.pointTag(repo, tag, m.digest)));
    if (tags.length === 0) return;
    for (const [key, write] of this.writesOf(repo, m, referrer)) await keepWritten(this.bucket, this.clock, key, write);
  }

  private writesOf(
    repo: string,
    m: StoredManifest,
    referrer: ReferrerRecord | undefined,
  ): [string, () => Promise<unknown>][] {
    const manifestKey = keys.manifest(repo, m.digest);
    const writes: [string, () => Promise<unknown>][] = [
      [
        manifestKey,
        () =>
          this.bucket.put(manifestKey, m.bytes, {
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
            ...(referrer.derivedFrom ? { customMetadata: { derivedFrom: referrer.derivedFrom } } : {}),
          }),
      ]);
    }
    return writes;
  }

  /**
   * Points a tag at a digest. The last writer wins, as in every registry; but a manifest DELETE
   * that was about to remove this tag as it pointed elsewhere must not take the new value with it,
   * so the write is kept as manifests are (worker/storage/intent.ts).
   */
  /**
   * A mirrored repository's tag (worker/upstream/mirror.ts): the digest the upstream named, and when
   * it was last asked (ms), which decides both when to ask again and when the collector may forget it.
   */
  async mirrorTag(repo: string, tag: string): Promise<{ digest: Digest; fetched: number } | null> {
    const obj = await this.bucket.head(keys.tag(repo, tag));
    const d = obj?.customMetadata?.digest;
    return d ? { digest: d as Digest, fetched: Number(obj.customMetadata?.fetched ?? 0) } : null;
  }

  /** Points a mirrored repository's tag at what its upstream answered, at `fetched` (ms). */
  async pointMirrorTag(repo: string, tag: string, digest: Digest, fetched: number): Promise<void> {
    await this.pointTag(repo, tag, digest, { fetched: String(fetched) });
  }

  private async pointTag(repo: string, tag: string, digest: Digest, extra: Record<string, string> = {}): Promise<void> {
    const key = keys.tag(repo, tag);
    const write = () => this.bucket.put(key, digest, { customMetadata: { ...extra, digest } });
    await write();
    await keepWritten(this.bucket, this.clock, key, write);
  }

  async deleteTag(repo: string, tag: string): Promise<boolean> {
    const key = keys.tag(repo, tag);
    if (!(await this.bucket.head(key))) return false;
    await this.bucket.delete(key);
    return true;
  }

  /**
   * Deletes a manifest revision with every tag that points at it and its referrer record. A tag
   * re-pointed elsewhere meanwhile must survive, and R2 has no conditional delete: the tags are
   * named in a deletion note first, checked again, and only those still pointing here are deleted;
   * a racing tag write reads the note and writes itself again (worker/storage/intent.ts).
   */
  async delete(repo: string, digest: Digest): Promise<boolean> {
    const obj = await this.bucket.head(keys.manifest(repo, digest));
    if (!obj) return false;
    const subject = obj.customMetadata?.subject as Digest | undefined;
    const own = [keys.manifest(repo, digest), ...(subject ? [keys.referrer(repo, subject, digest)] : [])];
    // Every tag of the repository is covered, not only those pointing here now: a tag re-pointed
    // elsewhere after the listing below must survive, so its writer has to see the note.
    const doomed = { keys: own, prefixes: [keys.tagsPrefix(repo)] };
    await underIntent(this.bucket, this.clock, crypto.randomUUID(), doomed, async (mayDelete) => {
      const tags: string[] = [];
      for await (const tag of this.listAll(keys.tagsPrefix(repo), true)) {
        if (tag.customMetadata?.digest === digest) tags.push(tag.key);
      }
      if (!mayDelete()) return;
      // Tags first: a tag never names a manifest that is already gone.
      await deleteAll(this.bucket, tags);
      await deleteAll(this.bucket, own);
    });
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
