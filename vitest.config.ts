import { defineConfig } from "vitest/config";
import path from "node:path";

// Three projects: unit (no processes, no network), integration (a real SQLite
// file, real llama-server, real sshd), e2e (real Chromium against `next start`).
// Both workspace packages' tests run from here; `npm test` runs all three.
const alias = { "~": path.resolve(import.meta.dirname, "src") };

export default defineConfig({
  test: {
    reporters: process.env.CI ? ["default"] : ["default"],
    projects: [
      {
        resolve: { alias },
        test: {
          name: "unit",
          sequence: { groupOrder: 0 },
          include: ["src/**/*.test.ts", "host-agent/src/**/*.test.ts", "test/**/*.test.ts"],
          exclude: ["**/*.integration.test.ts", "**/node_modules/**"],
          environment: "node",
          testTimeout: 15_000,
        },
      },
      {
        resolve: { alias },
        test: {
          name: "integration",
          sequence: { groupOrder: 1 },
          include: ["src/**/*.integration.test.ts", "host-agent/**/*.integration.test.ts", "test/**/*.integration.test.ts"],
          exclude: ["**/node_modules/**"],
          environment: "node",
          globalSetup: ["test/global-setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 600_000,
          // Real processes on 2 cores: keep files in separate workers but few at once.
          maxWorkers: 2,
        },
      },
    ],
  },
});
