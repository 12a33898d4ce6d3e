/**
 * The garbage collector.
 *
 * WHAT IS LIVE
 *   Per repository: every manifest reachable from a tag (through indexes, subjects and the
 *   referrers of reachable manifests) and every blob those manifests reference: configs, layers,
 *   and every allotment listed inside a 2DFS field. Everything else in the repository (untagged
 *   manifests, their referrer records, links, field facts) is garbage. Globally: a blob record is
 *   kept while some repository links the blob; a data object while a record, a link or a live
 *   upload session names it. Upload sessions idle past UPLOAD_TTL_SECONDS and derived objects unused for
 *   GC_DERIVED_TTL_SECONDS are garbage.
 *
 * ORDER
 *   1. For each repository: snapshot, mark, sweep, repair (repository.ts).
 *   2. Upload sessions, derived objects.
 *   3. List every link anew, then delete records of unlinked blobs (global.ts).
 *   4. Delete data objects that nothing names, through an intent note (global.ts).
 *   5. Delete expired intent notes (a run or a manifest DELETE that failed to clear its own).
 *   A repository's missing catalog marker (a push whose marker write failed) is written in 1.
 *
 * SAFETY AGAINST CONCURRENT PUSHES (a blob or manifest pushed while a collection runs is never deleted)
 *   a. Grace period. The run fixes `cutoff = start - GC_GRACE_SECONDS` once, and deletes only
 *      objects whose R2 `uploaded` time is before it. Everything a push writes during the run is
 *      newer: blobs, links (an upload or mount of an existing blob writes a fresh link, although it
 *      leaves the stored blob as it was), manifests, tags. The grace margin also covers a push that
 *      began before the run: its blobs, uploaded within the margin, stay until its manifest lands.
 *   b. Fresh manifests are roots. A manifest newer than the cutoff is marked like a tag, so a push
 *      that uploads an untagged manifest first (an index's children) and tags it later keeps all of it.
 *   c. Links decide blobs, not blob age. A re-push or mount of an old blob does not rewrite
 *      `blobs/`, only the link; the global phase lists links after every repository was swept,
 *      so a blob linked during the run (step 1 included) is seen as live.
 *   d. Intent, then check before delete. R2 has no conditional delete, so the sweep first writes
 *      what it is about to delete in an intent note (worker/storage/intent.ts), lists the
 *      repository again and deletes only objects still as the snapshot saw them (etag and upload
 *      time), then clears the note. A writer reads the notes after writing and writes again what
 *      was taken, so a rewrite at any moment survives (docs/storage.md).
 *   e. Repair. A client that finds an old, unreferenced link by HEAD skips the upload and pushes a
 *      manifest relying on it; if the sweep deleted that link in between, the repair pass (after
 *      the sweep, before any blob bytes go) lists the repository's tags and manifests again, walks
 *      every manifest the mark did not see, and puts back what it needs from memory.
 *   f. Nothing is swept on a partial mark: a reachable manifest or field that cannot be read
 *      leaves its repository untouched (reported as skipped).
 *   g. Data is deleted through an intent note too, after a second look at every record, link and
 *      session: a commit that links the bytes meanwhile is seen, or sees the note and retries.
 *
 * BOUNDS
 *   Each R2 call is counted. Between units of work (one repository; one listing page of a global
 *   phase) the run checks GC_MAX_OPERATIONS and, when spent, saves its phase and cursor in
 *   `gc/state` and stops; the next invocation continues with the same cutoff. A unit always runs
 *   to its end, so every invocation makes progress. A dry run keeps nothing and changes nothing.
 */
import type { Bucket } from "../storage/bucket.ts";
import { systemClock, type Clock } from "../storage/clock.ts";
import { clearExpiredIntents } from "../storage/intent.ts";
import { keys } from "../storage/keys.ts";
import { guardBucket } from "../storage/storage-error.ts";
import { GcBucket } from "./bucket.ts";
import type { GcConfig } from "../config.ts";
import type { GcContext, GcHooks } from "./context.ts";
import { GLOBAL_PHASES, globalPage, type GlobalPhase, type InvocationMemo } from "./global.ts";
import { emptyReport, type GcReport } from "./report.ts";
import { listRepositories } from "./repositories.ts";
import { collectRepository } from "./repository.ts";

type Phase = "repositories" | GlobalPhase;

/** A collection in progress, saved between invocations. */
interface GcState {
  runId: string;
  startedAt: number;
  cutoff: number;
  phase: Phase;
  /** The last repository or key the phase finished. */
  after?: string;
  report: GcReport;
}

export interface CollectOptions {
  dryRun?: boolean;
  /** The clock (ms); tests move it. */
  now?: number;
  /** The wall clock that intent notes expire by; the harness substitutes a logical one. */
  clock?: Clock;
  hooks?: GcHooks;
}

export async function collect(raw: Bucket, config: GcConfig, options: CollectOptions = {}): Promise<GcReport> {
  const dryRun = options.dryRun ?? false;
  const clock = options.clock ?? systemClock;
  const now = options.now ?? clock.now();
  const bucket = new GcBucket(guardBucket(raw), config.maxOperations);
  const state = (!dryRun && (await loadState(bucket))) || newState(dryRun, now, config);
  const ctx: GcContext = {
    bucket,
    runId: state.runId,
    clock,
    config,
    dryRun,
    cutoff: state.cutoff,
    now,
    report: state.report,
    wouldDelete: { links: new Set(), sessions: new Set(), blobs: new Set() },
    hooks: options.hooks ?? {},
  };
  const finished = await advance(ctx, state);
  state.report.operations += bucket.operations;
  if (dryRun) return { ...state.report, complete: finished };
  if (!finished) {
    await bucket.put(keys.gcState, JSON.stringify(state), { httpMetadata: { contentType: "application/json" } });
    return state.report;
  }
  // Last, so that a note a faulted run of this collection left is cleared by the next one.
  await clearExpiredIntents(bucket, clock);
  state.report.complete = true;
  await bucket.put(keys.gcLastReport, JSON.stringify(state.report), {
    httpMetadata: { contentType: "application/json" },
  });
  await bucket.delete([keys.gcState]);
  return state.report;
}

/** Runs phases from where the state left off until done (true) or out of operations (false). */
async function advance(ctx: GcContext, state: GcState): Promise<boolean> {
  if (state.phase === "repositories") {
    const names = (await listRepositories(ctx.bucket)).filter((n) => state.after === undefined || n > state.after);
    for (const name of names) {
      await collectRepository(ctx, name);
      if (!ctx.dryRun) await markInCatalog(ctx.bucket, name);
      state.report.repositories++;
      state.after = name;
      if (ctx.bucket.exhausted) return false;
    }
    state.phase = GLOBAL_PHASES[0]!;
    delete state.after;
  }
  const memo: InvocationMemo = { sessions: new Map() };
  for (let i = GLOBAL_PHASES.indexOf(state.phase); i < GLOBAL_PHASES.length; i++) {
    const phase = GLOBAL_PHASES[i]!;
    state.phase = phase;
    for (;;) {
      const after = await globalPage(ctx, phase, state.after, memo);
      if (after === undefined) {
        delete state.after;
        break;
      }
      state.after = after;
      if (ctx.bucket.exhausted) return false;
    }
    if (ctx.bucket.exhausted && i + 1 < GLOBAL_PHASES.length) {
      state.phase = GLOBAL_PHASES[i + 1]!;
      return false;
    }
  }
  return true;
}

function newState(dryRun: boolean, now: number, config: GcConfig): GcState {
  const runId = crypto.randomUUID();
  const cutoff = now - config.graceMs;
  return { runId, startedAt: now, cutoff, phase: "repositories", report: emptyReport(dryRun, runId, now, cutoff) };
}

async function loadState(bucket: GcBucket): Promise<GcState | null> {
  const obj = await bucket.get(keys.gcState);
  if (!obj) return null;
  try {
    return (await obj.json()) as GcState;
  } catch {
    return null; // A state that cannot be read starts a new collection.
  }
}

/**
 * Writes the catalog marker of a repository that has content but none (its push wrote everything
 * else, and the marker's write failed: catalog.ts `touch` is best effort).
 */
async function markInCatalog(bucket: GcBucket, name: string): Promise<void> {
  if (!(await bucket.head(keys.catalog(name)))) await bucket.put(keys.catalog(name), null);
}
