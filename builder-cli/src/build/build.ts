/**
 * `build`: 2dfs.json + BASE -> a 2DFS image stored locally as TARGET.
 *
 * Allotments are independent, so each is looked up in the cache or built on its own, as many
 * at once as there are cores. zlib and file reads run on libuv's thread pool, which is what
 * makes plain async concurrency use every core; hashing stays on the main thread, where
 * SHA-NI makes it cheap next to compression (see bench/build.ts for the figures).
 */
import os from "node:os";
import pLimit from "p-limit";
import type { Digest } from "../../../core/oci/digest.ts";
import type { Platform } from "../../../core/oci/manifest.ts";
import { MediaType } from "../../../core/oci/media-types.ts";
import { fieldFromAllotments, serializeField } from "../../../core/tdfs/field.ts";
import type { AuthOptions } from "../registry/auth.ts";
import type { ImageRef } from "../registry/ref.ts";
import { BuildCache, type CachedAllotment } from "../store/cache.ts";
import { targetRef } from "../store/images.ts";
import { OciLayout } from "../store/layout.ts";
import { cacheDir } from "../store/paths.ts";
import { touchImage } from "../store/usage.ts";
import { checkPartitionTags } from "../spec/partitions.ts";
import { loadSpec, type AllotmentSpec } from "../spec/spec.ts";
import { buildAllotment } from "./allotment.ts";
import { resolveBase } from "./base.ts";
import { resolveCompression } from "./compression.ts";
import { collectEntries, type TarEntry } from "./entries.ts";
import { assembleImage } from "./image.ts";

export interface BuildOptions {
  specFile: string;
  base: string;
  target: string;
  platforms?: Platform[];
  compression?: string;
  level?: number;
  /** Root of the local image store (default: under $XDG_DATA_HOME). */
  storeDir?: string;
  /** Cache directory (default: under $XDG_CACHE_HOME). */
  cacheDir?: string;
  plainHttp?: boolean;
  /** Credentials for a registry BASE. */
  auth?: (registry: string) => Promise<AuthOptions | undefined>;
  onEvent?: (e: BuildEvent) => void;
}

export type BuildEvent =
  | { type: "plan"; allotments: number; toBuild: number; bytesToRead: number }
  | { type: "read"; bytes: number }
  | { type: "allotment"; allotment: AllotmentResult };

export interface AllotmentResult extends CachedAllotment {
  row: number;
  col: number;
  cached: boolean;
}

export interface BuildResult {
  target: string;
  tag: string;
  layout: string;
  digest: Digest;
  platforms: Platform[];
  field: { digest: Digest; size: number };
  allotments: AllotmentResult[];
  rebuilt: number;
  cached: number;
  /** Where the base came from when it is in a registry (a push can mount from it). */
  baseRef?: ImageRef;
}

export async function build(opts: BuildOptions): Promise<BuildResult> {
  const emit = opts.onEvent ?? (() => {});
  const spec = await loadSpec(opts.specFile);
  const compression = resolveCompression(opts.compression ?? "auto", opts.level);
  const target = targetRef(opts.target, opts.storeDir, opts.plainHttp);
  checkPartitionTags(spec.partitions, target.tag, opts.specFile);
  const cache = new BuildCache(opts.cacheDir ?? cacheDir());
  await cache.loadStats();

  const entries = await Promise.all(spec.allotments.map((a) => collectEntries(a)));
  const plans = spec.allotments.map((a, i) => {
    const key = cache.keyFor(entries[i]!, compression);
    return { spec: a, entries: entries[i]!, key };
  });
  // Cache hits first, so the plan can say how much is left to read.
  const hits = await Promise.all(plans.map((p) => (p.key ? cache.get(p.key) : undefined)));
  const toBuild = plans.filter((_, i) => !hits[i]);
  emit({
    type: "plan",
    allotments: plans.length,
    toBuild: toBuild.length,
    bytesToRead: toBuild.reduce((n, p) => n + fileBytes(p.entries), 0),
  });

  const layout = await OciLayout.create(target.dir);
  const basePromise = resolveBase(opts.base, layout, {
    platforms: opts.platforms ?? [],
    ...(opts.plainHttp ? { plainHttp: true } : {}),
    ...(opts.auth ? { auth: opts.auth } : {}),
  });
  // Fail fast on a bad base, but do not leave it unobserved while allotments build.
  basePromise.catch(() => {});

  const limit = pLimit(os.availableParallelism());
  const results = await Promise.all(
    plans.map((p, i) =>
      limit(async (): Promise<AllotmentResult> => {
        const hit = hits[i];
        const out = hit
          ? { ...cellOf(p.spec), ...hit, cached: true }
          : { ...cellOf(p.spec), ...(await buildOne(p.entries, p.key)), cached: false };
        await layout.adopt(cache.blobPath(out.digest), out.digest);
        emit({ type: "allotment", allotment: out });
        return out;
      }),
    ),
  );

  async function buildOne(list: TarEntry[], knownKey: string | undefined): Promise<CachedAllotment> {
    const hashes = new Map<TarEntry, string>();
    const built = await buildAllotment(list, compression, cache, {
      onFileHashed: (e, hex) => {
        hashes.set(e, hex);
        cache.rememberHash(e, hex);
      },
      onBytes: (n) => emit({ type: "read", bytes: n }),
    });
    const entry: CachedAllotment = {
      digest: built.digest,
      diffid: built.diffid,
      size: built.size,
      mediaType: built.mediaType,
    };
    const key = knownKey ?? cache.keyFor(list, compression, (e) => hashes.get(e));
    if (key) await cache.put(key, entry);
    return entry;
  }

  const base = await basePromise;
  const field = serializeField(
    fieldFromAllotments(
      results.map((r) => ({ row: r.row, col: r.col, digest: r.digest.slice(7), diffid: r.diffid.slice(7) })),
    ),
  );
  const fieldBlob = await layout.writeBytes(new TextEncoder().encode(field));
  const index = await assembleImage(layout, {
    base: base.platforms,
    field: { mediaType: MediaType.TdfsField, ...fieldBlob },
    imageName: target.name,
    partitions: spec.partitions,
  });
  await layout.tag(target.tag, {
    ...index,
    annotations: base.registryRef
      ? { [BASE_REF_ANNOTATION]: `${base.registryRef.registry}/${base.registryRef.repository}` }
      : {},
  });
  await cache.saveStats();
  await touchImage(target);

  const rebuilt = results.filter((r) => !r.cached).length;
  return {
    target: target.name,
    tag: target.tag,
    layout: target.dir,
    digest: index.digest,
    platforms: base.platforms.map((p) => p.platform),
    field: fieldBlob,
    allotments: results,
    rebuilt,
    cached: results.length - rebuilt,
    ...(base.registryRef ? { baseRef: base.registryRef } : {}),
  };
}

/**
 * Recorded on the layout's own index.json entry (not in the image, whose bytes must not depend
 * on where the base was fetched): the repository a push may mount base layers from.
 */
export const BASE_REF_ANNOTATION = "org.opencontainers.image.base.name";

function cellOf(a: AllotmentSpec): { row: number; col: number } {
  return { row: a.row, col: a.col };
}

function fileBytes(entries: readonly TarEntry[]): number {
  return entries.reduce((n, e) => n + (e.type === "file" ? e.size : 0), 0);
}
