/** Worker entry point: wiring only. */
import { createApp } from "./app.ts";
import type { Bindings } from "./env.ts";
import { scheduledCollection } from "./gc/scheduled.ts";

const app = createApp();

export default {
  fetch: (req, env, ctx) => app.fetch(req, env, ctx),
  // The cron trigger (wrangler.toml [triggers]) runs one bounded step of garbage collection.
  scheduled: (_controller, env) => scheduledCollection(env),
} satisfies ExportedHandler<Bindings>;
