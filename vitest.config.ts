import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    reporters: ["default", "./test/setup/summary-reporter.ts"],
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          globalSetup: ["test/setup/tmpdir.global.ts"],
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          // One local cluster per test run (test/setup/cluster.global.ts), shared by every suite;
          // files run one at a time so suites never race for the 2 cores and the local nodes.
          globalSetup: ["test/setup/tmpdir.global.ts", "test/setup/cluster.global.ts"],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
