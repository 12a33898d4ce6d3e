/**
 * `POST /admin/gc` runs the collector on demand and answers its JSON report; `?dryRun=1` reports
 * what would be freed and changes nothing. A real run is one bounded step, like a cron run: when
 * `complete` is false, POST again to continue. Mount it behind the admin check: it takes no
 * repository scope and acts on the whole registry.
 */
import { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { collect } from "./collector.ts";
import { readConfig } from "../config.ts";

export const gcRoute = new Hono<AppEnv>();

gcRoute.post("/admin/gc", async (c) => {
  const flag = c.req.query("dryRun");
  const dryRun = flag !== undefined && flag !== "0" && flag !== "false";
  const env = c.env;
  return c.json(await collect(env.BLOBS, readConfig(env).gc, { dryRun }));
});
