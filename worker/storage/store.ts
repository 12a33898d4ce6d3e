/**
 * The storage facade handed to routes: every read and write of registry state goes through it.
 * It is built over a Bucket (R2, or MemoryBucket in the interleaving harness) and a clock.
 */
import { readConfig, type Config, type Vars } from "../config.ts";
import type { Bucket } from "./bucket.ts";
import { BlobStore } from "./blobs.ts";
import { Catalog } from "./catalog.ts";
import { systemClock, type Clock } from "./clock.ts";
import { DerivedStore } from "./derived.ts";
import { EdgeCache } from "./edge-cache.ts";
import { EdgeMemo } from "./edge-memo.ts";
import { FieldFactsStore } from "./facts.ts";
import { ManifestStore } from "./manifests.ts";
import { PartitionCache } from "./partition-cache.ts";
import { guardBucket } from "./storage-error.ts";
import { UploadStore } from "./uploads.ts";
import { Mirror } from "../upstream/mirror.ts";
import { mirrorOf } from "../upstream/settings.ts";

export interface Store {
  config: Config;
  blobs: BlobStore;
  uploads: UploadStore;
  manifests: ManifestStore;
  catalog: Catalog;
  derived: DerivedStore;
  facts: FieldFactsStore;
  partitionCache: PartitionCache;
  edgeCache: EdgeCache;
  /** What this location remembers of the bucket for EDGE_TTL_SECONDS (edge-memo.ts). */
  memo: EdgeMemo;
  /** Work to finish after the response. */
  later: (work: Promise<unknown>) => void;
  /** The upstream a repository is mirrored from (UPSTREAMS), or undefined for a repository of its own. */
  mirror(name: string): Mirror | undefined;
  /** The upstream this request answered for from the store because it was down, if any. */
  staleUpstream(): string | undefined;
}

export interface StoreParts {
  bucket: Bucket;
  /** KV for partition results; absent in the in-memory harness, where nothing is cached. */
  kv?: KVNamespace;
  clock?: Clock;
  vars?: Vars;
  /** The request's origin, under which the location's memo keeps its entries. */
  origin?: string;
  /** Work to finish after the response (the execution context's waitUntil). */
  later?: (work: Promise<unknown>) => void;
}

export function createStore({
  bucket,
  kv,
  clock = systemClock,
  vars = {},
  origin = "http://registry.internal",
  later = (work) => void work,
}: StoreParts): Store {
  // A failed storage call is a StorageError everywhere below, whatever bucket was handed in.
  bucket = guardBucket(bucket);
  const config = readConfig(vars);
  const blobs = new BlobStore(bucket, clock);
  const mirrors = new Map<string, Mirror | undefined>();
  const store: Store = {
    config,
    blobs,
    uploads: new UploadStore(bucket, blobs, clock, config.uploadTtlSeconds),
    manifests: new ManifestStore(bucket, clock),
    catalog: new Catalog(bucket),
    derived: new DerivedStore(bucket, clock),
    facts: new FieldFactsStore(bucket),
    partitionCache: new PartitionCache(kv),
    edgeCache: new EdgeCache(config.cacheMaxBlobBytes),
    memo: new EdgeMemo(origin, config.edgeTtlSeconds, later),
    later,
    mirror: (name) => {
      if (!mirrors.has(name)) {
        const found = mirrorOf(vars as Record<string, unknown>, name);
        mirrors.set(name, found && new Mirror(store, found.upstream, name, found.remoteName));
      }
      return mirrors.get(name);
    },
    staleUpstream: () => [...mirrors.values()].find((m) => m?.stale)?.host,
  };
  return store;
}
