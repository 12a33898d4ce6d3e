/**
 * The floor for serving under workerd: a Worker of a few lines that looks up a blob's record and
 * returns its R2 object's body, and nothing else (no routing, auth, link check or headers of
 * ours). It runs on the registry's own store (wrangler.toml's bucket, persisted where `npm start`
 * persisted it), in Miniflare like `npm start`. What the registry takes beyond this is ours; what
 * this takes beyond the distribution registry is workerd and its local R2.
 */
import { Log, LogLevel, Miniflare, convertV4MiniflareOptions } from "miniflare";
import type { Digest } from "../core/oci/digest.ts";
import { join } from "node:path";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { freePort, REPO_ROOT } from "../test/helpers/process.ts";
import { keys } from "../worker/storage/keys.ts";

const SCRIPT = `export default {
  async fetch(request, env) {
    const record = await env.BLOBS.head(decodeURIComponent(new URL(request.url).pathname.slice(1)));
    const object = record && (await env.BLOBS.get(record.customMetadata.loc));
    if (!object) return new Response(null, { status: 404 });
    return new Response(object.body, { headers: { "Content-Length": String(object.size) } });
  },
};`;

export interface BareR2Worker {
  /** The URL that serves the blob's bytes (single-object blobs only). */
  urlOf(digest: Digest): string;
  stop(): Promise<void>;
}

export async function startBareR2Worker(persistDir: string): Promise<BareR2Worker> {
  const port = await freePort();
  // The BLOBS binding as wrangler.toml declares it, so this reads the registry's bucket.
  const { r2Buckets } = unstable_getMiniflareWorkerOptions(join(REPO_ROOT, "wrangler.toml")).workerOptions as {
    r2Buckets: Record<string, { id: string }>;
  };
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: "127.0.0.1",
      port,
      resourcePersistencePath: join(persistDir, "v3"),
      log: new Log(LogLevel.WARN),
      // No Request.cf object: this Worker reads none, and fetching one needs the internet.
      cf: false,
      workers: [
        {
          name: "bare-r2",
          modules: true,
          script: SCRIPT,
          compatibilityDate: "2026-11-01",
          r2Buckets: { BLOBS: r2Buckets.BLOBS! },
        },
      ],
    }),
  );
  const url = await mf.ready;
  return {
    urlOf: (digest) => `${url.origin}/${encodeURIComponent(keys.blob(digest))}`,
    stop: () => mf.dispose(),
  };
}
