/** Worker entry point: wiring only. */
import { createApp } from "./app.ts";
import type { Bindings } from "./env.ts";

const app = createApp();

export default {
  fetch: (req, env, ctx) => app.fetch(req, env, ctx),
} satisfies ExportedHandler<Bindings>;
