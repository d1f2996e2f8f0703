import { defineConfig } from "vitest/config";
import path from "node:path";

// Three projects: unit (no processes, no network), integration (a real SQLite
// file, real llama-server, real sshd), e2e (the production build run as the
// Docker image runs it, `node scripts/start.mjs --no-build`, driven over HTTP
// and by a real Chromium; artifacts in test-results/).
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
          // *.container.test.ts: the container check, its own config (vitest.container.config.ts).
          exclude: ["**/*.integration.test.ts", "**/*.container.test.ts", "**/node_modules/**"],
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
      {
        resolve: { alias },
        test: {
          name: "e2e",
          sequence: { groupOrder: 2 },
          // The production build (one per run, in e2e/global-setup.ts) and real Chromium.
          include: ["e2e/**/*.e2e.test.ts"],
          exclude: ["**/node_modules/**"],
          environment: "node",
          globalSetup: ["e2e/global-setup.ts"],
          setupFiles: ["e2e/setup.ts"],
          testTimeout: 180_000,
          hookTimeout: 600_000,
          // A page reacts through a production server, SSE and React on a shared 2-core machine:
          // give expect.poll 10 s (not 1 s) before a condition counts as not met.
          expect: { poll: { timeout: 10_000 } },
          // Each file starts app servers, llama-servers and a browser: one file at a time on 2 cores.
          maxWorkers: 1,
          fileParallelism: false,
        },
      },
    ],
    // Artifacts (screenshots, app logs, the build log) go to test-results/, which git ignores.
    attachmentsDir: "test-results/attachments",
  },
});
