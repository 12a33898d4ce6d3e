/**
 * The registry-wide phases, run after every repository was swept: expired upload sessions,
 * derived objects nobody asked for, blob records no repository links, and data objects nothing
 * names. Each phase walks its prefix one listing page at a time, so that a run can stop between
 * pages and continue from the last key it handled.
 */
import type { Digest } from "../../core/oci/digest.ts";
import { blobInfoFromMeta } from "../storage/blobs.ts";
import { underIntent } from "../storage/intent.ts";
import { dataIdOf, digestFromKey, keys } from "../storage/keys.ts";
import type { UploadSession } from "../storage/uploads.ts";
import { isOld, type GcContext } from "./context.ts";
import { listRepositories } from "./repositories.ts";
import { tally } from "./report.ts";

export type GlobalPhase = "uploads" | "derived" | "blobs" | "data";
export const GLOBAL_PHASES: readonly GlobalPhase[] = ["uploads", "derived", "blobs", "data"];

/** Facts a phase computes once per invocation, before its first page. */
export interface InvocationMemo {
  liveBlobs?: Set<Digest>;
  /** Data ids that a record, a link or a session names. */
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
 * Upload sessions idle for longer than the upload TTL are over: their state is deleted, and with
 * it their claim on their pieces, which the data phase then frees. A session being closed or
 * cancelled is judged the same way: the request that owns it has long finished.
 */
async function uploadsPage(
  ctx: GcContext,
  after: string | undefined,
  memo: InvocationMemo,
): Promise<string | undefined> {
  const p = await page(ctx, keys.uploadsPrefix, after, false);
  const doomed: string[] = [];
  for (const o of p.objects) {
    const uuid = o.key.slice(keys.uploadsPrefix.length);
    if (!uuid || uuid.includes("/")) continue;
    const alive = await judgeSession(ctx, o);
    memo.sessions.set(uuid, alive);
    if (!alive) doomed.push(o.key);
  }
  if (!ctx.dryRun) await ctx.bucket.delete(doomed);
  return next(p);
}

/** Whether a session is alive; an expired one is counted with the pieces it held. */
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
  tally(ctx.report, "uploads", obj.size);
  if (ctx.dryRun) ctx.wouldDelete.sessions.add(obj.key.slice(keys.uploadsPrefix.length));
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
 * A blob record is kept while any repository links the blob. The links are listed here, after
 * every repository was swept, never remembered from the mark. Deleting a record frees nothing by
 * itself (its bytes go in the data phase, once nothing names them) and costs only deduplication:
 * a racing push that recreates it, or that linked the bytes already, is safe (docs/storage.md).
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
    for await (const o of ctx.bucket.listAll(keys.blobLinksPrefix(name), ["customMetadata"])) {
      const d = digestFromKey(o.key);
      if (!ctx.wouldDelete.links.has(o.key) && blobInfoFromMeta(d, o.customMetadata)) live.add(d);
    }
  }
  return live;
}

/**
 * A data object is live while a record, a link or an upload session names its id. One that is
 * old enough and named by nothing is deleted by the intent protocol (worker/storage/intent.ts):
 * the page's candidates are written down first, then everything that names data is listed again,
 * and only what is still unnamed goes. A push that links bytes in between either shows up in the
 * second listing or reads the intent and does not rely on them.
 */
async function dataPage(ctx: GcContext, after: string | undefined, memo: InvocationMemo): Promise<string | undefined> {
  memo.liveData ??= await namedData(ctx);
  const p = await page(ctx, keys.dataPrefix, after, false);
  const candidates = new Map<string, R2Object[]>();
  for (const o of p.objects) {
    const id = dataIdOf(o.key);
    if (id === undefined || memo.liveData.has(id) || !isOld(ctx, o)) continue;
    candidates.set(id, [...(candidates.get(id) ?? []), o]);
  }
  if (candidates.size === 0) return next(p);
  if (ctx.dryRun) {
    for (const objs of candidates.values()) for (const o of objs) tally(ctx.report, "data", o.size);
    return next(p);
  }
  await underIntent(ctx.bucket, ctx.clock, ctx.runId, { data: [...candidates.keys()] }, async (mayDelete) => {
    await ctx.hooks.afterIntent?.();
    const named = await namedData(ctx);
    const doomed = [...candidates].filter(([id]) => !named.has(id)).flatMap(([, objs]) => objs);
    // Pieces before the table or single object that names them, so that a table never outlives its pieces.
    doomed.sort((a, b) => Number(isHead(a.key)) - Number(isHead(b.key)));
    if (!mayDelete()) return;
    for (const o of doomed) tally(ctx.report, "data", o.size);
    await ctx.bucket.delete(doomed.map((o) => o.key));
  });
  return next(p);
}

/** The object a record or link names: a blob's single object or its piece table. */
function isHead(key: string): boolean {
  const rest = key.slice(keys.dataPrefix.length);
  return !rest.includes("/") || rest.endsWith("/table");
}

/** Every data id a record, a non-withdrawn link or an upload session names. */
async function namedData(ctx: GcContext): Promise<Set<string>> {
  const named = new Set<string>();
  const add = (meta: Record<string, string> | undefined) => {
    const id = meta?.state === "withdrawn" ? undefined : dataIdOf(meta?.loc ?? "");
    if (id !== undefined) named.add(id);
  };
  for await (const o of ctx.bucket.listAll(keys.blobsPrefix, ["customMetadata"])) {
    if (!ctx.wouldDelete.blobs.has(o.key)) add(o.customMetadata);
  }
  for (const name of await listRepositories(ctx.bucket)) {
    for await (const o of ctx.bucket.listAll(keys.blobLinksPrefix(name), ["customMetadata"])) {
      if (!ctx.wouldDelete.links.has(o.key)) add(o.customMetadata);
    }
  }
  for await (const o of ctx.bucket.listAll(keys.uploadsPrefix)) {
    const uuid = o.key.slice(keys.uploadsPrefix.length);
    if (!ctx.wouldDelete.sessions.has(uuid)) named.add(uuid);
  }
  return named;
}
