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

export interface AppOptions {
  /** How a request's Store is built; the interleaving harness builds one over a MemoryBucket and a logical clock. */
  storeFor?: (env: AppEnv["Bindings"]) => Store;
}

const defaultStore = (env: AppEnv["Bindings"]): Store => createStore({ bucket: env.BLOBS, kv: env.CACHE, vars: env });

export function createApp(options: AppOptions = {}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const storeFor = options.storeFor ?? defaultStore;

  app.use("*", async (c, next) => {
    c.set("store", storeFor(c.env));
    await next();
    c.header("Docker-Distribution-API-Version", "registry/2.0");
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
    // A fault of ours: log it for `wrangler tail`, answer without internals.
    console.error("internal error", err);
    return renderError(new RegistryError("INTERNAL", ERROR_CODES.INTERNAL.message));
  });
  return app;
}

export function renderError(err: RegistryError): Response {
  const headers = new Headers(err.headers);
  headers.set("Content-Type", "application/json");
  headers.set("Docker-Distribution-API-Version", "registry/2.0");
  return new Response(JSON.stringify(err.toJSON()), { status: err.status, headers });
}
