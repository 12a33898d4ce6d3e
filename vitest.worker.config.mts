// Integration tests that run inside workerd against the real Worker, its R2 bucket and KV
// namespace (Miniflare, through the Workers Vitest integration).
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        // Tests sign tokens with a known key; production reads it from a wrangler secret.
        bindings: { TOKEN_SIGNING_KEY: "test-signing-key-0123456789abcdef" },
      },
    }),
  ],
  test: {
    include: ["test/worker/**/*.test.ts"],
    testTimeout: 60_000,
  },
});
