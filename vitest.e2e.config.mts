// End-to-end tests: the registry started as a user starts it (wrangler dev, npm start), driven by real
// clients (skopeo, containerd, the 2dfs-push CLI) and compared with the distribution registry.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/e2e/**/*.test.ts"],
    globalSetup: ["test/e2e/setup/global.ts"],
    testTimeout: 600_000,
    hookTimeout: 300_000,
    fileParallelism: false,
  },
});
