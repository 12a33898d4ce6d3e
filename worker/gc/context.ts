/** What every phase of one collection shares. */
import type { GcBucket } from "./bucket.ts";
import type { GcConfig } from "../config.ts";
import type { GcReport } from "./report.ts";
import type { Clock } from "../storage/clock.ts";

/**
 * Points between phases where a test can act (push, mount) to make a race happen at a known
 * moment. Production runs have none.
 */
export interface GcHooks {
  /** After a repository was marked, before it is swept. */
  afterMark?(repository: string): Promise<void>;
  /** After every repository was swept, before the links that keep blobs alive are listed. */
  beforeBlobs?(): Promise<void>;
  /** After a collection wrote its intent to delete data, before it looks at references again. */
  afterIntent?(): Promise<void>;
}

export interface GcContext {
  bucket: GcBucket;
  /** Names this collection's intent notes (worker/storage/intent.ts). */
  runId: string;
  /** The wall clock that intent notes expire by (the harness substitutes a logical one). */
  clock: Clock;
  config: GcConfig;
  dryRun: boolean;
  /** Only objects uploaded before this instant (ms) may be deleted: the run's start minus the grace period. */
  cutoff: number;
  /** This invocation's clock (ms), for the idle lifetimes of upload sessions and derived objects. */
  now: number;
  report: GcReport;
  /**
   * A dry run deletes nothing, so the later phases must be told what the earlier ones would have
   * deleted: the links of the repository sweep, expired upload sessions, and unlinked blobs.
   */
  wouldDelete: { links: Set<string>; sessions: Set<string>; blobs: Set<string> };
  hooks: GcHooks;
}

export function isOld(ctx: GcContext, obj: R2Object): boolean {
  return obj.uploaded.getTime() < ctx.cutoff;
}
