/**
 * The collector's intent: before its last look at what references a link or a data object, a
 * collection writes down what it is about to delete (`gc/intent/<run>`), and removes the note when
 * it is done. A request that has just written a reference reads the notes afterwards. Whatever
 * the interleaving, one side sees the other: either the collection's last look finds the new
 * reference and keeps the object, or the request finds the note and does not rely on the object.
 * A note carries its expiry; a collection never deletes past it, so a note left by a collection
 * that died blocks nobody for long, and the next collection deletes it (clearExpiredIntents).
 */
import { deleteAll, listAll, type Bucket } from "./bucket.ts";
import type { Clock } from "./clock.ts";
import { keys } from "./keys.ts";

export interface Intent {
  /** ms since epoch; after it the collection deletes nothing more under this note. */
  expires: number;
  /** Keys the collection is about to delete (links, manifests, referrer records, field facts). */
  keys: string[];
  /** Data ids (every key under data/<id>) the collection is about to delete. */
  data: string[];
  /** Key prefixes under which anything may be deleted (a manifest DELETE's tags). */
  prefixes?: string[];
}

/** How long a note holds. A collection checks it before each delete call. */
export const INTENT_TTL_MS = 60_000;
/** A collection stops deleting this long before its note expires, for clocks that disagree a little. */
export const INTENT_MARGIN_MS = 15_000;

/** What a note names; every list may be empty. */
export type Doomed = Partial<Omit<Intent, "expires">>;

/**
 * Runs `work` under a note naming what it may delete: the note is written first and cleared
 * after, whatever happens. `work` deletes only while `mayDelete()` holds, that is well before the
 * note expires, since writers stop heeding a note once it has.
 */
export async function underIntent<T>(
  bucket: Bucket,
  clock: Clock,
  id: string,
  doomed: Doomed,
  work: (mayDelete: () => boolean) => Promise<T>,
): Promise<T> {
  const expires = clock.now() + INTENT_TTL_MS;
  const intent: Intent = { expires, keys: doomed.keys ?? [], data: doomed.data ?? [], prefixes: doomed.prefixes ?? [] };
  const key = keys.gcIntent(id);
  try {
    await bucket.put(key, JSON.stringify(intent), { httpMetadata: { contentType: "application/json" } });
  } catch (e) {
    // The note may be there with its answer lost; it would hold writers back until it expires.
    await bucket.delete(key).catch(() => undefined);
    throw e;
  }
  try {
    return await work(() => clock.now() < expires - INTENT_MARGIN_MS);
  } finally {
    await bucket.delete(key);
  }
}

/**
 * Deletes the notes that have expired: those of a collection or a manifest DELETE that died, or
 * whose own delete failed. No one heeds them any more, but every commit would still list and read
 * them. A note that cannot be parsed is judged by its age.
 */
export async function clearExpiredIntents(bucket: Bucket, clock: Clock): Promise<number> {
  const expired: string[] = [];
  for await (const o of listAll(bucket, keys.gcIntentPrefix)) {
    const got = await bucket.get(o.key);
    if (!got) continue;
    let expires: number;
    try {
      expires = ((await got.json()) as Intent).expires;
    } catch {
      expires = o.uploaded.getTime() + INTENT_TTL_MS;
    }
    if (!(expires > clock.now())) expired.push(o.key);
  }
  await deleteAll(bucket, expired);
  return expired.length;
}

/** Whether a live note names the data id or one of the keys. */
export async function intentBlocks(
  bucket: Bucket,
  clock: Clock,
  target: { dataId?: string | undefined; keys?: string[] },
): Promise<boolean> {
  const notes = await bucket.list({ prefix: keys.gcIntentPrefix });
  for (const o of notes.objects) {
    const got = await bucket.get(o.key);
    // Gone between the listing and the read: that collection just finished, and may have deleted
    // what the caller wrote. Answering "blocked" makes the caller look again.
    if (!got) return true;
    let intent: Intent;
    try {
      intent = (await got.json()) as Intent;
    } catch {
      continue;
    }
    if (intent.expires <= clock.now()) continue;
    if (target.dataId !== undefined && intent.data.includes(target.dataId)) return true;
    if (target.keys?.some((k) => intent.keys.includes(k) || intent.prefixes?.some((p) => k.startsWith(p)))) {
      return true;
    }
  }
  return false;
}

/**
 * Makes a write that a collection may be sweeping stick: waits while a live note names `key`, then
 * checks the object is there, and writes it again if a collection deleted it. Reading the notes
 * before checking matters: a collection clears its note only after deleting, so a caller that
 * finds no note either wrote before the collection looked (which then kept it) or comes after the
 * deletion (and sees the object gone).
 */
export async function keepWritten(
  bucket: Bucket,
  clock: Clock,
  key: string,
  write: () => Promise<unknown>,
): Promise<void> {
  for (let wait = 100; ; wait = Math.min(wait * 2, 10_000)) {
    if (await intentBlocks(bucket, clock, { keys: [key] })) {
      await clock.sleep(wait);
      continue;
    }
    if (await bucket.head(key)) return;
    await write();
  }
}
