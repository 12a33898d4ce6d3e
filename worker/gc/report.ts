/** What a collection freed (or, in a dry run, would free), per kind of object, in objects and bytes. */

export const CATEGORIES = [
  "manifests",
  "referrers",
  "links",
  "fieldFacts",
  "blobs",
  "data",
  "uploads",
  "derived",
  "mirrorTags",
] as const;
export type Category = (typeof CATEGORIES)[number];

export interface Tally {
  objects: number;
  bytes: number;
}

export interface GcReport {
  dryRun: boolean;
  runId: string;
  /** ISO times: when this collection started, and the age an object must exceed to be deleted. */
  startedAt: string;
  cutoff: string;
  /** False when the invocation ran out of operations; the next run continues from the saved cursor. */
  complete: boolean;
  /** R2 operations spent, over every invocation of this collection. */
  operations: number;
  repositories: number;
  freed: Record<Category, Tally>;
  total: Tally;
  /** Objects deleted and then put back, because a push that raced the collection needed them. */
  restored: number;
  /** Repositories left unswept because something reachable could not be read (nothing there is deleted). */
  skipped: { repository: string; reason: string }[];
}

export function emptyReport(dryRun: boolean, runId: string, startedAt: number, cutoff: number): GcReport {
  const freed = Object.fromEntries(CATEGORIES.map((c) => [c, { objects: 0, bytes: 0 }])) as Record<Category, Tally>;
  return {
    dryRun,
    runId,
    startedAt: new Date(startedAt).toISOString(),
    cutoff: new Date(cutoff).toISOString(),
    complete: false,
    operations: 0,
    repositories: 0,
    freed,
    total: { objects: 0, bytes: 0 },
    restored: 0,
    skipped: [],
  };
}

export function tally(report: GcReport, category: Category, bytes: number, objects = 1): void {
  report.freed[category].objects += objects;
  report.freed[category].bytes += bytes;
  report.total.objects += objects;
  report.total.bytes += bytes;
}
