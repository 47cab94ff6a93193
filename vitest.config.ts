import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Integration tests start real loopback servers; two cores are shared, so keep the pool small.
    maxWorkers: 2,
  },
});
