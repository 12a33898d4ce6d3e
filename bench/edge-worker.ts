/**
 * The registry's Worker for the edge benchmark only (bench/edge.ts), never deployed: the same app,
 * over a bucket that waits a set time before every R2 call (a bucket one region away) or fails
 * every call (an outage), and that tallies every R2 and KV call, after-response work included.
 * The bench sets these, and settings to override, through `/_bench/*`, which only this Worker
 * answers.
 */
import { createApp } from "../worker/app.ts";
import type { Bindings } from "../worker/env.ts";
import type { Bucket } from "../worker/storage/bucket.ts";
import { countingBucket, countingKv, newCounts } from "../worker/storage/counting.ts";
import { createStore } from "../worker/storage/store.ts";

const totals = newCounts();
const control: { delayMs: number; failing: boolean; vars: Record<string, string> } = {
  delayMs: 0,
  failing: false,
  vars: {},
};

function remote(bucket: Bucket): Bucket {
  const call =
    <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      if (control.delayMs > 0) await new Promise((r) => setTimeout(r, control.delayMs));
      if (control.failing) throw new Error("We encountered an internal error. Please try again.");
      return f(...args);
    };
  return {
    head: call((k: string) => bucket.head(k)),
    get: call((k: string, o?: R2GetOptions) => bucket.get(k, o)),
    put: call((k: string, v: Parameters<Bucket["put"]>[1], o?: R2PutOptions) => bucket.put(k, v, o)),
    delete: call((k: string | string[]) => bucket.delete(k)),
    list: call((o?: R2ListOptions) => bucket.list(o)),
  };
}

const app = createApp({
  storeFor: (env, parts) =>
    createStore({
      // Counted twice: per request (Server-Timing) and in the bench's totals.
      bucket: countingBucket(countingBucket(remote(env.BLOBS), totals), parts.counts),
      kv: countingKv(countingKv(env.CACHE, totals), parts.counts),
      vars: env,
      origin: parts.origin,
      later: parts.later,
    }),
});

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/_bench/counts") {
      const body = JSON.stringify(totals);
      if (url.searchParams.has("reset")) Object.assign(totals, newCounts());
      return new Response(body, { headers: { "Content-Type": "application/json" } });
    }
    if (url.pathname === "/_bench/control") {
      control.delayMs = Number(url.searchParams.get("delayMs") ?? control.delayMs);
      control.failing = url.searchParams.get("failing") === "1";
      // Settings for the requests that follow, e.g. EDGE_TTL_SECONDS=0 to measure without the memo.
      for (const [k, v] of url.searchParams) if (/^[A-Z_]+$/.test(k)) control.vars[k] = v;
      return Response.json(control);
    }
    return app.fetch(request, { ...env, ...control.vars }, ctx);
  },
} satisfies ExportedHandler<Bindings>;
