/**
 * Fault injection for the storage harness: one request's storage calls (R2 and KV alike) are
 * counted, and the k-th one fails in one of three ways R2 and KV really fail.
 *
 *   throw  the call fails and does nothing (R2's 500 "We encountered an internal error", a 503);
 *   lost   the call does what it was asked, then its answer is lost: the caller sees an error;
 *   crash  the isolate dies there: that call and every later one of the request fail with a Crash
 *          and do nothing, so the request makes no further change; its answer, if any, is ignored.
 *
 * A plan without k only counts: the dry run that tells how many calls a path makes.
 */
import type { Bucket } from "../../../worker/storage/bucket.ts";
import type { RegistryTarget } from "../../helpers/images/push.ts";
import { World } from "./interleave.ts";

export type FaultKind = "throw" | "lost" | "crash";
export const FAULT_KINDS: readonly FaultKind[] = ["throw", "lost", "crash"];

/** What a killed isolate's remaining calls see. Nothing ever reaches storage after it. */
export class Crash extends Error {
  constructor() {
    super("the isolate was killed");
    this.name = "Crash";
  }
}

const MESSAGES: Record<Exclude<FaultKind, "crash">, string> = {
  throw: "We encountered an internal error. Please try again.",
  lost: "Network connection lost.",
};

export class FaultPlan {
  /** Storage calls made so far under this plan. */
  ops = 0;
  crashed = false;
  fired = false;
  /** Every call, numbered, with the one that failed marked: what a failing case prints. */
  readonly trace: string[] = [];
  readonly k: number | undefined;
  readonly kind: FaultKind | undefined;
  private readonly match: ((label: string) => boolean) | undefined;

  /** The k-th call fails; without k, nothing does (a dry run that counts). */
  constructor(k?: number, kind?: FaultKind, match?: (label: string) => boolean) {
    this.k = k;
    this.kind = kind;
    this.match = match;
  }

  /** The first call whose label (`R2 put blobs/...`, `KV get ...`) starts with `prefix` fails. */
  static at(prefix: string, kind: FaultKind): FaultPlan {
    return new FaultPlan(undefined, kind, (label) => label.startsWith(prefix));
  }

  /** Runs one storage call under the plan. */
  async call<T>(label: string, run: () => Promise<T>): Promise<T> {
    if (this.crashed) {
      this.trace.push(`   ${label} (after the crash: not made)`);
      throw new Crash();
    }
    const n = ++this.ops;
    const fails = !this.fired && (n === this.k || (this.match?.(label) ?? false));
    if (!fails) {
      this.trace.push(`${n} ${label}`);
      return run();
    }
    this.fired = true;
    this.trace.push(`${n} ${label}  <-- ${this.kind}`);
    switch (this.kind) {
      case "crash":
        this.crashed = true;
        throw new Crash();
      case "lost":
        await run();
        throw new Error(MESSAGES.lost);
      default:
        throw new Error(MESSAGES.throw);
    }
  }
}

/** The bucket as one request sees it under `plan`. */
export function faultyBucket(bucket: Bucket, plan: FaultPlan): Bucket {
  return {
    head: (key) => plan.call(`R2 head ${key}`, () => bucket.head(key)),
    get: (key, options) => plan.call(`R2 get ${key}`, () => bucket.get(key, options)),
    put: (key, value, options) => plan.call(`R2 put ${key}`, () => bucket.put(key, value, options)),
    delete: (keys) => plan.call(`R2 delete ${String(keys)}`, () => bucket.delete(keys)),
    list: (options) => plan.call(`R2 list ${options?.prefix ?? ""}`, () => bucket.list(options)),
  };
}

/**
 * An in-memory KV namespace: the part of KV the registry uses (get as text or json, put, delete,
 * list by prefix), consistent at once, which is KV's best case; the registry may rely on nothing
 * more, since KV only caches.
 */
export class MemoryKv {
  private readonly values = new Map<string, string>();

  keys(): string[] {
    return [...this.values.keys()].sort();
  }

  async get(key: string, type?: "text" | "json" | { type?: string }): Promise<unknown> {
    const v = this.values.get(key);
    if (v === undefined) return null;
    const as = typeof type === "string" ? type : type?.type;
    return as === "json" ? JSON.parse(v) : v;
  }

  async put(key: string, value: string): Promise<void> {
    this.values.set(key, value);
  }

  async delete(key: string): Promise<void> {
    this.values.delete(key);
  }

  async list(options: { prefix?: string } = {}): Promise<{ keys: { name: string }[]; list_complete: true }> {
    const prefix = options.prefix ?? "";
    return {
      keys: this.keys()
        .filter((k) => k.startsWith(prefix))
        .map((name) => ({ name })),
      list_complete: true,
    };
  }
}

/** The KV namespace as one request sees it under `plan`. */
export function faultyKv(kv: MemoryKv, plan: FaultPlan): KVNamespace {
  const wrapped = {
    get: (key: string, type?: "text" | "json") => plan.call(`KV get ${key}`, () => kv.get(key, type)),
    put: (key: string, value: string) => plan.call(`KV put ${key}`, () => kv.put(key, value)),
    delete: (key: string) => plan.call(`KV delete ${key}`, () => kv.delete(key)),
    list: (options?: { prefix?: string }) => plan.call(`KV list ${options?.prefix ?? ""}`, () => kv.list(options)),
  };
  return wrapped as unknown as KVNamespace;
}

/** A World whose next request sees its storage (R2 and KV) through a fault plan, once `armed`. */
export class FaultWorld {
  readonly kv = new MemoryKv();
  readonly w: World;
  armed: FaultPlan | undefined;

  constructor() {
    this.w = new World(0, {
      storageFor: (bucket) => {
        const plan = this.armed;
        this.armed = undefined;
        if (!plan) return { bucket, kv: this.kv as unknown as KVNamespace };
        return { bucket: faultyBucket(bucket, plan), kv: faultyKv(this.kv, plan) };
      },
    });
  }

  /** One request under `plan`. */
  request(plan: FaultPlan, path: string, init?: RequestInit): Promise<Response> {
    this.armed = plan;
    return this.w.request(path, init);
  }

  /** The World as a target for the test-image builder's pushes. */
  target(): RegistryTarget {
    return { fetch: (p, init) => this.w.request(p, init), concurrency: 1 };
  }
}
