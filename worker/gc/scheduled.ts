/** The cron trigger's handler: one bounded step of the current collection (or the start of a new one). */
import type { Bindings } from "../env.ts";
import { collect } from "./collector.ts";
import { readConfig } from "../config.ts";

export async function scheduledCollection(env: Bindings): Promise<void> {
  const report = await collect(env.BLOBS, readConfig(env).gc);
  // One line for `wrangler tail`: counts only, no names.
  console.log(
    JSON.stringify({
      gc: report.runId,
      complete: report.complete,
      operations: report.operations,
      freed: report.total,
      restored: report.restored,
      skipped: report.skipped.length,
    }),
  );
}
