/**
 * One repository's collection: mark from its tags, sweep what was not reached, then repair what a
 * racing push needed. A repository is one unit of work: it is marked and swept in one invocation.
 */
import { isDigest, type Digest } from "../../core/oci/digest.ts";
import { RegistryError } from "../../core/oci/errors.ts";
import { BlobStore, blobInfoFromMeta } from "../storage/blobs.ts";
import { systemClock } from "../storage/clock.ts";
import { underIntent } from "../storage/intent.ts";
import { digestFromKey, keys, subjectFromReferrerKey } from "../storage/keys.ts";
import type { GcBucket, ListInclude } from "./bucket.ts";
import { isOld, type GcContext } from "./context.ts";
import { tally, type Category } from "./report.ts";
import { UnreadableError, walk, type Marks, type WalkSource } from "./walk.ts";

/** A field is JSON listing its allotments; anything this large is refused rather than buffered. */
const FIELD_MAX_BYTES = 64 * 1024 * 1024;
const WITH_METADATA: ListInclude = ["httpMetadata", "customMetadata"];

interface Snapshot {
  name: string;
  tagTargets: Digest[];
  manifests: Map<Digest, R2Object>;
  links: Map<Digest, R2Object>;
  /** Referrer records, and the referrer digests that name each subject. */
  referrerRecords: R2Object[];
  referrersBySubject: Map<Digest, Digest[]>;
  fieldFacts: R2Object[];
}

/** A deleted object, kept in memory until the repair pass is over so that it can be put back. */
interface Buried {
  category: Category;
  digest: Digest;
  obj: R2Object;
  body: Uint8Array | null;
}

export async function collectRepository(ctx: GcContext, name: string): Promise<void> {
  if (ctx.config.mirrorPrefixes?.some((p) => name.startsWith(p))) await expireMirrorTags(ctx, name);
  const snap = await snapshot(ctx.bucket, name);
  const marks: Marks = { manifests: new Set(), blobs: new Set() };
  // Roots: every tag, and every manifest too young to delete (a push in progress may tag it next).
  const roots = [...snap.tagTargets];
  for (const [d, obj] of snap.manifests) if (!isOld(ctx, obj)) roots.push(d);
  try {
    await walk(roots, storedSource(ctx.bucket, snap), marks);
  } catch (e) {
    if (!(e instanceof UnreadableError)) throw e;
    ctx.report.skipped.push({ repository: name, reason: e.message });
    return;
  }
  await ctx.hooks.afterMark?.(name);
  const buried = await sweep(ctx, snap, marks);
  if (buried.length > 0) await repair(ctx, snap, marks, buried);
}

/**
 * A mirror is a cache of its upstream (docs/upstreams.md): a tag not asked of the upstream for
 * UPSTREAM_CACHE_TTL_SECONDS is forgotten, and what only it reached is collected as any garbage
 * is. Its next pull fetches it again. A tag is asked again on any read after UPSTREAM_TAG_TTL_SECONDS,
 * so its `fetched` time (and its object's upload time, which every such write renews) says when it
 * was last wanted.
 */
async function expireMirrorTags(ctx: GcContext, name: string): Promise<void> {
  const ttl = ctx.config.upstreamCacheTtlMs;
  if (ttl === undefined) return;
  const expired: R2Object[] = [];
  for await (const o of ctx.bucket.listAll(keys.tagsPrefix(name), ["customMetadata"])) {
    const fetched = Number(o.customMetadata?.fetched ?? 0);
    if (ctx.now - fetched > ttl && ctx.now - o.uploaded.getTime() > ttl) expired.push(o);
  }
  for (const o of expired) tally(ctx.report, "mirrorTags", o.size);
  if (!ctx.dryRun && expired.length > 0) await ctx.bucket.delete(expired.map((o) => o.key));
}

async function snapshot(bucket: GcBucket, name: string): Promise<Snapshot> {
  // Tags are listed before manifests: a tag is written after its manifest, so every tag seen here
  // names a manifest that the manifest listing also sees.
  const tagTargets: Digest[] = [];
  for await (const o of bucket.listAll(keys.tagsPrefix(name), ["customMetadata"])) {
    const d = o.customMetadata?.digest;
    if (d) tagTargets.push(d as Digest);
  }
  const manifests = new Map<Digest, R2Object>();
  for await (const o of bucket.listAll(keys.manifestsPrefix(name), WITH_METADATA))
    manifests.set(digestFromKey(o.key), o);
  const links = new Map<Digest, R2Object>();
  for await (const o of bucket.listAll(keys.blobLinksPrefix(name), WITH_METADATA)) links.set(digestFromKey(o.key), o);
  const referrerRecords: R2Object[] = [];
  const referrersBySubject = new Map<Digest, Digest[]>();
  const root = keys.allReferrersPrefix(name);
  const addReferrer = (subject: Digest, referrer: Digest): void => {
    referrersBySubject.set(subject, [...(referrersBySubject.get(subject) ?? []), referrer]);
  };
  for await (const o of bucket.listAll(root, WITH_METADATA)) {
    referrerRecords.push(o);
    addReferrer(subjectFromReferrerKey(name, o.key), digestFromKey(o.key));
    // A signature of a partition lives as long as the manifest the partition is derived from.
    const source = o.customMetadata?.derivedFrom;
    if (source && isDigest(source)) addReferrer(source, digestFromKey(o.key));
  }
  const fieldFacts: R2Object[] = [];
  for await (const o of bucket.listAll(keys.fieldFactsPrefix(name), WITH_METADATA)) fieldFacts.push(o);
  return { name, tagTargets, manifests, links, referrerRecords, referrersBySubject, fieldFacts };
}

/** Reads manifests as they are stored now. */
function storedSource(bucket: GcBucket, snap: Snapshot): WalkSource {
  return {
    manifest: async (d) => {
      const obj = await bucket.get(keys.manifest(snap.name, d));
      if (!obj) return null;
      return { mediaType: obj.httpMetadata?.contentType ?? "", bytes: new Uint8Array(await obj.arrayBuffer()) };
    },
    field: (d) => readField(bucket, snap, d),
    referrersOf: (d) => snap.referrersBySubject.get(d) ?? [],
  };
}

/** A field's bytes, from where the repository's link (or else the global record) says they are. */
async function readField(bucket: GcBucket, snap: Snapshot, d: Digest): Promise<Uint8Array | null> {
  const link = snap.links.get(d);
  const info =
    (link && blobInfoFromMeta(d, link.customMetadata)) ??
    blobInfoFromMeta(d, (await bucket.head(keys.blob(d)))?.customMetadata);
  if (!info) return null;
  if (info.size > FIELD_MAX_BYTES) {
    throw new UnreadableError(`field ${d} is ${info.size} bytes, more than the ${FIELD_MAX_BYTES} a collection reads`);
  }
  try {
    return new Uint8Array(await new Response(await new BlobStore(bucket, systemClock).open(info)).arrayBuffer());
  } catch (e) {
    if (e instanceof RegistryError && e.code === "BLOB_UNKNOWN") return null;
    throw e;
  }
}

/** Deletes (or, in a dry run, counts) every object of the repository that the mark did not reach and that is old enough. */
async function sweep(ctx: GcContext, snap: Snapshot, marks: Marks): Promise<Buried[]> {
  const doomed: { category: Category; digest: Digest; obj: R2Object }[] = [];
  const consider = (category: Category, digest: Digest, obj: R2Object, live: boolean) => {
    if (!live && isOld(ctx, obj)) doomed.push({ category, digest, obj });
  };
  for (const [d, o] of snap.manifests) consider("manifests", d, o, marks.manifests.has(d));
  for (const o of snap.referrerRecords) {
    const referrer = digestFromKey(o.key);
    consider("referrers", referrer, o, marks.manifests.has(referrer));
  }
  for (const [d, o] of snap.links) consider("links", d, o, marks.blobs.has(d));
  for (const o of snap.fieldFacts) {
    const field = digestFromKey(o.key);
    consider("fieldFacts", field, o, marks.blobs.has(field));
  }
  for (const { category, obj } of doomed) tally(ctx.report, category, obj.size);
  if (ctx.dryRun) {
    for (const { category, obj } of doomed) if (category === "links") ctx.wouldDelete.links.add(obj.key);
    return [];
  }
  const buried: Buried[] = [];
  for (const entry of doomed) {
    let body: Uint8Array | null = null;
    if (entry.obj.size > 0) {
      const got = await ctx.bucket.get(entry.obj.key);
      if (!got) continue; // Already gone.
      body = new Uint8Array(await got.arrayBuffer());
    }
    buried.push({ ...entry, body });
  }
  if (buried.length === 0) return [];
  // Name what is about to go in an intent first: a push that rewrites one of these keys after the
  // check below reads the note and writes it again once this sweep is done (worker/storage/intent.ts).
  const named = { keys: buried.map((b) => b.obj.key) };
  return underIntent(ctx.bucket, ctx.clock, ctx.runId, named, async (mayDelete) => {
    const unchanged = await stillAsSnapshot(ctx.bucket, snap.name, buried);
    const deleting = mayDelete() ? buried.filter((b) => unchanged.has(b.obj.key)) : [];
    for (const b of buried) if (!deleting.includes(b)) tally(ctx.report, b.category, -b.obj.size, -1);
    await ctx.bucket.delete(deleting.map((b) => b.obj.key));
    return deleting;
  });
}

/**
 * The keys, among `buried`, whose object is still the one the snapshot saw. A push since then
 * rewrites what it relies on (an upload or mount rewrites the link, a re-push the manifest), and
 * R2 has no conditional delete: listing again just before deleting keeps such an object, which
 * the snapshot's age would have condemned.
 */
async function stillAsSnapshot(bucket: GcBucket, name: string, buried: Buried[]): Promise<Set<string>> {
  const prefixes: Record<Category, string | undefined> = {
    manifests: keys.manifestsPrefix(name),
    referrers: keys.allReferrersPrefix(name),
    links: keys.blobLinksPrefix(name),
    fieldFacts: keys.fieldFactsPrefix(name),
    blobs: undefined,
    data: undefined,
    uploads: undefined,
    derived: undefined,
    mirrorTags: undefined,
  };
  const seen = new Map(buried.map((b) => [b.obj.key, b.obj]));
  const unchanged = new Set<string>();
  for (const category of new Set(buried.map((b) => b.category))) {
    const prefix = prefixes[category];
    if (!prefix) continue;
    for await (const o of bucket.listAll(prefix)) {
      const then = seen.get(o.key);
      if (then && then.etag === o.etag && then.uploaded.getTime() === o.uploaded.getTime()) unchanged.add(o.key);
    }
  }
  return unchanged;
}

/**
 * The second half of the race guarantee (see collector.ts). A manifest that was pushed after the
 * snapshot may rely on links and manifests the sweep just deleted: its push checked that they
 * existed before they were deleted. Tags and manifests are listed again, every manifest the mark
 * did not see is walked, and whatever it needs is put back from memory, before any blob bytes are
 * touched.
 */
async function repair(ctx: GcContext, snap: Snapshot, marks: Marks, buried: Buried[]): Promise<void> {
  // Roots: every tag and every manifest the mark did not see. A tag may now name a manifest that
  // was just deleted (a re-push of the same bytes wrote it again a moment before the delete).
  const roots: Digest[] = [];
  for await (const o of ctx.bucket.listAll(keys.tagsPrefix(snap.name), ["customMetadata"])) {
    const d = o.customMetadata?.digest as Digest | undefined;
    if (d && !marks.manifests.has(d)) roots.push(d);
  }
  for await (const o of ctx.bucket.listAll(keys.manifestsPrefix(snap.name))) {
    const d = digestFromKey(o.key);
    if (!marks.manifests.has(d)) roots.push(d);
  }
  if (roots.length === 0) return;
  const graveManifests = new Map(buried.filter((b) => b.category === "manifests").map((b) => [b.digest, b]));
  const stored = storedSource(ctx.bucket, snap);
  const needed: Marks = { manifests: new Set(), blobs: new Set() };
  try {
    await walk(
      roots,
      {
        // What the mark reached was not swept, and neither was anything it references.
        manifest: async (d) => {
          if (marks.manifests.has(d)) return null;
          const grave = graveManifests.get(d);
          if (grave?.body) return { mediaType: grave.obj.httpMetadata?.contentType ?? "", bytes: grave.body };
          return stored.manifest(d);
        },
        field: stored.field,
        referrersOf: stored.referrersOf,
      },
      needed,
    );
  } catch (e) {
    if (!(e instanceof UnreadableError)) throw e;
    // What the new manifest needs is unknown: put everything back.
    ctx.report.skipped.push({ repository: snap.name, reason: e.message });
    for (const b of buried) await restore(ctx, b);
    return;
  }
  for (const b of buried) {
    const wanted =
      b.category === "manifests" || b.category === "referrers"
        ? needed.manifests.has(b.digest)
        : needed.blobs.has(b.digest);
    if (wanted) await restore(ctx, b);
  }
}

async function restore(ctx: GcContext, b: Buried): Promise<void> {
  await ctx.bucket.put(b.obj.key, b.body, {
    ...(b.obj.httpMetadata ? { httpMetadata: b.obj.httpMetadata } : {}),
    ...(b.obj.customMetadata ? { customMetadata: b.obj.customMetadata } : {}),
  });
  tally(ctx.report, b.category, -b.obj.size, -1);
  ctx.report.restored++;
}
