/**
 * The registry application: middleware order, the routes, and the one place where errors become
 * OCI error JSON. Routes are mounted under /v2; everything they need comes from `c.var.store`.
 */
import { Hono } from "hono";
import { ERROR_CODES, RegistryError } from "../core/oci/errors.ts";
import { authorize } from "./auth/middleware.ts";
import { tokenRoutes } from "./auth/token-route.ts";
import type { AppEnv } from "./env.ts";
import { gcRoute } from "./gc/route.ts";
import { blobs } from "./routes/blobs.ts";
import { listing } from "./routes/listing.ts";
import { manifests } from "./routes/manifests.ts";
import { uploads } from "./routes/uploads.ts";
import { countingBucket, countingKv, newCounts, serverTiming, type OpCounts } from "./storage/counting.ts";
import { StorageError } from "./storage/storage-error.ts";
import { createStore, type Store } from "./storage/store.ts";
import { ui } from "./ui/index.tsx";

const RESOURCES = [
  "/_catalog",
  "/:name{.+}/blobs/uploads/",
  "/:name{.+}/blobs/uploads/:uuid",
  "/:name{.+}/blobs/:digest",
  "/:name{.+}/manifests/:reference",
  "/:name{.+}/tags/list",
  "/:name{.+}/referrers/:digest",
];

/** What a request's Store is built with besides the bindings. */
export interface RequestParts {
  /** Every R2 and KV call the request makes is counted here. */
  counts: OpCounts;
  origin: string;
  later: (work: Promise<unknown>) => void;
}

export interface AppOptions {
  /**
   * How a request's Store is built; the interleaving harness builds one over a MemoryBucket and a
   * logical clock, the edge bench one over a bucket that is slow or failing.
   */
  storeFor?: (env: AppEnv["Bindings"], parts: RequestParts) => Store;
}

const defaultStore = (env: AppEnv["Bindings"], parts: RequestParts): Store =>
  createStore({
    bucket: countingBucket(env.BLOBS, parts.counts),
    kv: countingKv(env.CACHE, parts.counts),
    vars: env,
    origin: parts.origin,
    later: parts.later,
  });

export function createApp(options: AppOptions = {}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const storeFor = options.storeFor ?? defaultStore;

  app.use("*", async (c, next) => {
    const counts = newCounts();
    const pending: Promise<unknown>[] = [];
    const later = (work: Promise<unknown>): void => {
      const settled = work.catch(() => undefined);
      pending.push(settled);
      waitUntil(c, settled);
    };
    const store = storeFor(c.env, { counts, origin: new URL(c.req.url).origin, later });
    c.set("store", store);
    c.set("later", later);
    await next();
    c.header("Docker-Distribution-API-Version", "registry/2.0");
    const stale = store.staleUpstream();
    if (stale) c.header("Warning", `110 - "upstream ${stale} is unavailable: this answer may be stale"`);
    if (store.config.debugTiming) {
      c.header("Server-Timing", serverTiming(counts));
      // What runs after the response (cache fills, memo writes) is counted too, and logged.
      const before = serverTiming(counts);
      waitUntil(
        c,
        Promise.allSettled(pending).then(() => {
          console.log(
            `${c.req.method} ${new URL(c.req.url).pathname}: ${before}; with after-response work ${serverTiming(counts)}`,
          );
        }),
      );
    }
  });
  // The web view judges its visitors itself (worker/ui/viewer.ts): it answers with pages, not challenges.
  app.route("/ui", ui);
  // Who may do what is settled before any route runs (docs/auth.md); /token checks its own credentials.
  app.use("*", authorize);
  app.route("/", tokenRoutes);

  app.get("/v2/", (c) => c.json({}));
  app.get("/v2", (c) => c.redirect("/v2/", 301));

  const v2 = new Hono<AppEnv>();
  // Uploads first: `/blobs/uploads/` must not be taken for a blob whose digest is "uploads".
  v2.route("/", uploads);
  v2.route("/", blobs);
  v2.route("/", manifests);
  v2.route("/", listing);
  // A known resource asked with a method it does not take is 405, as distribution answers.
  for (const path of RESOURCES) {
    v2.all(path, () => {
      throw new RegistryError("METHOD_UNKNOWN", undefined, undefined);
    });
  }
  app.route("/v2", v2);
  app.route("/", gcRoute);

  app.notFound(() => renderError(new RegistryError("NOT_FOUND", undefined, undefined)));
  app.onError((err) => {
    if (err instanceof RegistryError) return renderError(err);
    if (err instanceof StorageError) {
      // R2 failed (worker/storage/storage-error.ts): a retry may succeed, so it is not our fault.
      console.error("storage unavailable", err.message);
      return renderError(new RegistryError("UNAVAILABLE", "storage is unavailable; retry shortly"));
    }
    // A fault of ours: log it for `wrangler tail`, answer without internals.
    console.error("internal error", err);
    return renderError(new RegistryError("INTERNAL", ERROR_CODES.INTERNAL.message));
  });
  return app;
}

/** The execution context's waitUntil; without one (app.request() in tests) the work just runs. */
function waitUntil(c: { executionCtx: { waitUntil(p: Promise<unknown>): void } }, work: Promise<unknown>): void {
  try {
    c.executionCtx.waitUntil(work);
  } catch {
    void work;
  }
}

export function renderError(err: RegistryError): Response {
  const headers = new Headers(err.headers);
  headers.set("Content-Type", "application/json");
  headers.set("Docker-Distribution-API-Version", "registry/2.0");
  return new Response(JSON.stringify(err.toJSON()), { status: err.status, headers });
}
