/**
 * The registry-wide phases, run after every repository was swept: expired upload sessions,
 * derived objects nobody asked for, blobs no repository links, and data objects nothing owns.
 * Each phase walks its prefix one listing page at a time, so that a run can stop between pages
 * and continue from the last key it handled.
 */
import type { Digest } from "../../core/oci/digest.ts";
import { digestFromKey, keys } from "../storage/keys.ts";
import type { UploadSession } from "../storage/uploads.ts";
import { isOld, type GcContext } from "./context.ts";
import { listRepositories } from "./repositories.ts";
import { tally } from "./report.ts";

export type GlobalPhase = "uploads" | "derived" | "blobs" | "data";
export const GLOBAL_PHASES: readonly GlobalPhase[] = ["uploads", "derived", "blobs", "data"];

/** Facts a phase computes once per invocation, before its first page. */
export interface InvocationMemo {
  liveBlobs?: Set<Digest>;
  liveData?: Set<string>;
  /** Upload sessions seen in this invocation: uuid -> still alive. */
  sessions: Map<string, boolean>;
}

/** Handles one page of a phase; returns the last key handled, or undefined when the phase is over. */
export async function globalPage(
  ctx: GcContext,
  phase: GlobalPhase,
  after: string | undefined,
  memo: InvocationMemo,
): Promise<string | undefined> {
  switch (phase) {
    case "uploads":
      return uploadsPage(ctx, after, memo);
    case "derived":
      return derivedPage(ctx, after);
    case "blobs":
      return blobsPage(ctx, after, memo);
    case "data":
      return dataPage(ctx, after, memo);
  }
}

async function page(ctx: GcContext, prefix: string, after: string | undefined, withMeta: boolean): Promise<R2Objects> {
  return ctx.bucket.list({
    prefix,
    ...(after ? { startAfter: after } : {}),
    ...(withMeta ? { include: ["customMetadata" as const] } : {}),
  });
}

const next = (p: R2Objects): string | undefined => (p.truncated ? p.objects.at(-1)?.key : undefined);

/**
 * Upload sessions idle for longer than the upload TTL are over: their R2 multipart upload is
 * aborted and their state and tail objects deleted. A tail whose session is gone is deleted too.
 */
async function uploadsPage(
  ctx: GcContext,
  after: string | undefined,
  memo: InvocationMemo,
): Promise<string | undefined> {
  const p = await page(ctx, keys.uploadsPrefix, after, false);
  const doomed: string[] = [];
  for (const o of p.objects) {
    const [uuid, ...rest] = o.key.slice(keys.uploadsPrefix.length).split("/");
    if (!uuid) continue;
    if (rest.length === 0) {
      const alive = await judgeSession(ctx, o);
      memo.sessions.set(uuid, alive);
      if (!alive) doomed.push(o.key);
      continue;
    }
    // A tail sorts after its session, so the session was judged already, unless an earlier
    // invocation did: then it is alive only if it is still there.
    const alive =
      memo.sessions.get(uuid) ??
      ((await ctx.bucket.head(keys.upload(uuid))) !== null && !ctx.wouldDelete.sessions.has(uuid));
    memo.sessions.set(uuid, alive);
    if (!alive && isOld(ctx, o)) {
      tally(ctx.report, "uploads", o.size);
      doomed.push(o.key);
    }
  }
  if (!ctx.dryRun) await ctx.bucket.delete(doomed);
  return next(p);
}

/** Whether a session is alive; an expired one is counted, and its multipart upload aborted. */
async function judgeSession(ctx: GcContext, obj: R2Object): Promise<boolean> {
  const got = await ctx.bucket.get(obj.key);
  if (!got) return false;
  let session: UploadSession | undefined;
  try {
    session = (await got.json()) as UploadSession;
  } catch {
    // Unreadable state cannot be resumed by any client; it ages out like any object.
  }
  const lastUsed = typeof session?.updated === "number" ? session.updated : obj.uploaded.getTime();
  if (ctx.now - lastUsed <= ctx.config.uploadTtlMs) return true;
  // Parts already sent sit in R2's multipart storage until the upload is aborted.
  tally(ctx.report, "uploads", obj.size + (session?.parts?.length ?? 0) * (session?.partSize ?? 0));
  const uuid = obj.key.slice(keys.uploadsPrefix.length);
  if (ctx.dryRun) ctx.wouldDelete.sessions.add(uuid);
  else if (session?.uploadId) await ctx.bucket.abortMultipart(keys.data(uuid), session.uploadId);
  return false;
}

/**
 * Derived objects can always be computed again, so one that nobody wrote or read within the
 * derived TTL goes. Readers refresh `customMetadata.lastAccess` (ms) at most daily; the TTL is
 * far longer than that.
 */
async function derivedPage(ctx: GcContext, after: string | undefined): Promise<string | undefined> {
  const p = await page(ctx, keys.derivedPrefix, after, true);
  const doomed: string[] = [];
  for (const o of p.objects) {
    const accessed = Number(o.customMetadata?.lastAccess ?? 0);
    const lastUsed = Math.max(o.uploaded.getTime(), Number.isFinite(accessed) ? accessed : 0);
    if (ctx.now - lastUsed > ctx.config.derivedTtlMs) {
      tally(ctx.report, "derived", o.size);
      doomed.push(o.key);
    }
  }
  if (!ctx.dryRun) await ctx.bucket.delete(doomed);
  return next(p);
}

/**
 * A blob is live while any repository links it. The links are listed here, after every
 * repository was swept, never remembered from the mark: a push or mount that linked a blob since
 * then wrote a link this listing sees.
 */
async function blobsPage(ctx: GcContext, after: string | undefined, memo: InvocationMemo): Promise<string | undefined> {
  if (!memo.liveBlobs) {
    await ctx.hooks.beforeBlobs?.();
    memo.liveBlobs = await linkedBlobs(ctx);
  }
  const p = await page(ctx, keys.blobsPrefix, after, false);
  const doomed: string[] = [];
  for (const o of p.objects) {
    if (memo.liveBlobs.has(digestFromKey(o.key)) || !isOld(ctx, o)) continue;
    tally(ctx.report, "blobs", o.size);
    doomed.push(o.key);
  }
  if (ctx.dryRun) for (const k of doomed) ctx.wouldDelete.blobs.add(k);
  else await ctx.bucket.delete(doomed);
  return next(p);
}

async function linkedBlobs(ctx: GcContext): Promise<Set<Digest>> {
  const live = new Set<Digest>();
  for (const name of await listRepositories(ctx.bucket)) {
    for await (const o of ctx.bucket.listAll(keys.blobLinksPrefix(name))) {
      if (!ctx.wouldDelete.links.has(o.key)) live.add(digestFromKey(o.key));
    }
  }
  return live;
}

/**
 * A data object (the bytes of a chunked upload) is live while a stored blob points to it or an
 * upload session owns it. A blob deleted in the previous phase leaves its data object here.
 */
async function dataPage(ctx: GcContext, after: string | undefined, memo: InvocationMemo): Promise<string | undefined> {
  memo.liveData ??= await ownedData(ctx);
  const p = await page(ctx, keys.dataPrefix, after, false);
  const doomed: string[] = [];
  for (const o of p.objects) {
    if (memo.liveData.has(o.key) || !isOld(ctx, o)) continue;
    tally(ctx.report, "data", o.size);
    doomed.push(o.key);
  }
  if (!ctx.dryRun) await ctx.bucket.delete(doomed);
  return next(p);
}

async function ownedData(ctx: GcContext): Promise<Set<string>> {
  const owned = new Set<string>();
  for await (const o of ctx.bucket.listAll(keys.blobsPrefix, ["customMetadata"])) {
    const loc = o.customMetadata?.loc;
    if (loc?.startsWith(keys.dataPrefix) && !ctx.wouldDelete.blobs.has(o.key)) owned.add(loc);
  }
  let cursor: string | undefined;
  do {
    // Sessions only: the delimiter folds each session's tails into one prefix.
    const p = await ctx.bucket.list({ prefix: keys.uploadsPrefix, delimiter: "/", ...(cursor ? { cursor } : {}) });
    for (const o of p.objects) {
      const uuid = o.key.slice(keys.uploadsPrefix.length);
      if (!ctx.wouldDelete.sessions.has(uuid)) owned.add(keys.data(uuid));
    }
    cursor = p.truncated ? p.cursor : undefined;
  } while (cursor);
  return owned;
}
