// Bindings that only the workerd test configuration adds (vitest.worker.config.mts miniflare options).
declare global {
  namespace Cloudflare {
    interface Env {
      /** Same kind as wrangler.toml's LOGIN_LIMITER, with the shortest window: 25 per 10 s. */
      LOGIN_LIMITER_10S: RateLimit;
      /** Interleavings per scenario in storage-interleavings.test.ts, from the environment of `vitest`. */
      INTERLEAVING_SEEDS?: string;
      /** The order storage-faults.test.ts runs its cases in; unset, a random seed (printed). */
      FAULT_SEED?: string;
      /** The seed of http-fuzz.test.ts, and how many requests it sends. */
      HTTP_FUZZ_SEED?: string;
      HTTP_FUZZ_RUNS?: string;
    }
  }
}

export {};
