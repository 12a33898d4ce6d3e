// Integration tests that run inside workerd against the real Worker, its R2 bucket and KV
// namespace (Miniflare, through the Workers Vitest integration).
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          // wrangler.toml ships token auth; the registry tests run open, as `npm start` does. The
          // auth tests turn token mode on per call (test/worker/auth-support.ts workerWith).
          AUTH_MODE: "none",
          // Tests sign tokens with a known key; production reads it from a wrangler secret.
          TOKEN_SIGNING_KEY: "test-signing-key-0123456789abcdef",
          // How many seeded interleavings test/worker/storage-interleavings.test.ts runs per scenario
          // (CONTRIBUTING.md); unset, it runs its default.
          ...(process.env.INTERLEAVING_SEEDS ? { INTERLEAVING_SEEDS: process.env.INTERLEAVING_SEEDS } : {}),
          // The seed of the fault matrix's order (test/worker/storage-faults.test.ts); unset, a random one.
          ...(process.env.FAULT_SEED ? { FAULT_SEED: process.env.FAULT_SEED } : {}),
          // The seed and request count of test/worker/http-fuzz.test.ts (CONTRIBUTING.md); unset, its defaults.
          ...(process.env.HTTP_FUZZ_SEED ? { HTTP_FUZZ_SEED: process.env.HTTP_FUZZ_SEED } : {}),
          ...(process.env.HTTP_FUZZ_RUNS ? { HTTP_FUZZ_RUNS: process.env.HTTP_FUZZ_RUNS } : {}),
        },
        // LOGIN_LIMITER comes from wrangler.toml. This one has the shortest window the binding
        // allows, so a test can wait it out (test/worker/auth-rate-limit.test.ts).
        ratelimits: { LOGIN_LIMITER_10S: { namespace_id: "9010", simple: { limit: 25, period: 10 } } },
      },
    }),
  ],
  test: {
    include: ["test/worker/**/*.test.ts"],
    testTimeout: 60_000,
  },
});
