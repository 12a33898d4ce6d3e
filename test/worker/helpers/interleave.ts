/**
 * The interleaving harness: the real registry (routes, Store, collector) over a MemoryBucket whose
 * every operation is a scheduling point. A seeded scheduler runs 2-3 concurrent operations and, at
 * each point where all of them wait on storage, picks which one goes next. The same seed gives the
 * same interleaving, so a failure prints a seed and the storage trace that reproduce it.
 */
import type { Hono } from "hono";
import { createApp } from "../../../worker/app.ts";
import type { AppEnv } from "../../../worker/env.ts";
import { collect } from "../../../worker/gc/collector.ts";
import type { GcReport } from "../../../worker/gc/report.ts";
import type { Bucket } from "../../../worker/storage/bucket.ts";
import type { Clock } from "../../../worker/storage/clock.ts";
import { MemoryBucket } from "../../../worker/storage/memory-bucket.ts";
import { createStore } from "../../../worker/storage/store.ts";

/** mulberry32: a small, fast, seedable PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Parked {
  label: string;
  resume: () => void;
}

/**
 * Runs tasks so that only one advances between two storage operations. Outside `run` every
 * operation goes through at once (setting up a scenario is not interleaved).
 */
export class Scheduler {
  private readonly random: () => number;
  private parked: Parked[] = [];
  private active = false;
  /** The order in which parked operations were released: the interleaving. */
  readonly choices: string[] = [];

  constructor(seed: number) {
    this.random = prng(seed);
  }

  readonly gate = (op: string, key: string): Promise<void> => {
    if (!this.active) return Promise.resolve();
    return new Promise<void>((resume) => this.parked.push({ label: `${op} ${key}`, resume }));
  };

  async run<T>(tasks: (() => Promise<T>)[]): Promise<PromiseSettledResult<T>[]> {
    this.active = true;
    let live = tasks.length;
    const settled = tasks.map((t) =>
      t().finally(() => {
        live--;
      }),
    );
    const all = Promise.allSettled(settled);
    try {
      for (;;) {
        // Let every task run until it waits on storage or finishes.
        await quiesce(() => this.parked.length >= live);
        if (live === 0) break;
        const i = Math.floor(this.random() * this.parked.length);
        const [next] = this.parked.splice(i, 1);
        this.choices.push(next!.label);
        next!.resume();
      }
    } finally {
      this.active = false;
      for (const p of this.parked.splice(0)) p.resume();
    }
    return all;
  }
}

/** Yields to the event loop until `done()` holds: storage, streams and hashing all settle this way. */
async function quiesce(done: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (done()) {
      // Twice more, so that a task that just parked has nothing left in flight.
      await new Promise((r) => setTimeout(r, 0));
      if (done()) return;
    }
    await new Promise((r) => setTimeout(r, 0));
  }
  throw new Error("the tasks neither finished nor waited on storage");
}

/**
 * What one request's Store is built over. By default every request sees the bucket itself and no
 * KV; the fault harness (faults.ts) hands each request its own view, which may fail.
 */
export interface WorldStorage {
  storageFor?: (bucket: MemoryBucket) => { bucket: Bucket; kv?: KVNamespace };
  /** Settings over the harness's own (no edge cache, no grace period). */
  vars?: Record<string, string>;
}

/** One scenario's world: a fresh bucket, a logical clock, the app over it, and the collector. */
export class World {
  readonly scheduler: Scheduler;
  readonly bucket: MemoryBucket;
  readonly clock: Clock;
  readonly app: Hono<AppEnv>;
  private time = Date.UTC(2026, 0, 1);

  constructor(seed: number, storage: WorldStorage = {}) {
    this.scheduler = new Scheduler(seed);
    // Time moves one millisecond per storage operation, so every write has its own upload time.
    this.clock = {
      now: () => this.time,
      sleep: async (ms) => {
        this.time += ms;
        await this.scheduler.gate("sleep", String(ms));
      },
    };
    this.bucket = new MemoryBucket({ now: () => ++this.time, gate: this.scheduler.gate });
    const env = {
      AUTH_MODE: "none",
      CACHE_MAX_BLOB_BYTES: "0",
      GC_GRACE_SECONDS: "0",
      EDGE_TTL_SECONDS: "0",
      ...storage.vars,
    };
    const storageFor = storage.storageFor ?? ((bucket: MemoryBucket) => ({ bucket }));
    this.app = createApp({
      storeFor: () => createStore({ ...storageFor(this.bucket), clock: this.clock, vars: env }),
    });
    this.env = env;
  }

  private readonly env: Record<string, string>;

  now(): number {
    return this.time;
  }

  /** Moves the clock on: past a grace period, an intent note's expiry, an upload's lifetime. */
  advance(ms: number): void {
    this.time += ms;
  }

  async request(path: string, init: RequestInit = {}): Promise<Response> {
    return this.app.request(`http://registry.test${path}`, init, this.env as unknown as AppEnv["Bindings"]);
  }

  /**
   * A collection. `startedAt` is when the oldest request still running began: the grace period is
   * assumed to exceed any request's duration (docs/storage.md), so what in-flight requests wrote
   * is younger than the cutoff. `bucket` is the collector's view of the bucket (the bucket itself
   * unless a test makes it fail).
   */
  collect(startedAt: number, bucket: Bucket = this.bucket): Promise<GcReport> {
    return collect(
      bucket,
      { graceMs: 0, uploadTtlMs: 24 * 3600_000, derivedTtlMs: 7 * 24 * 3600_000, maxOperations: 1_000_000 },
      { now: startedAt, clock: this.clock },
    );
  }
}
