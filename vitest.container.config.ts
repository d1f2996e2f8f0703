import { defineConfig } from "vitest/config";
import path from "node:path";

// The container check (README "Run the container check"; `.ci/run` runs it after
// `npm test`): the image built from the Dockerfile, run with docker-compose.yml
// by docker-compose against podman. Its own config, so `npm test` needs no
// container engine: `npm run test:container`.
export default defineConfig({
  resolve: { alias: { "~": path.resolve(import.meta.dirname, "src") } },
  test: {
    name: "container",
    include: ["test/container/**/*.container.test.ts"],
    environment: "node",
    // The host's llama-server for "the Mac" side (built once, cached; LLAMA_SERVER_BIN overrides).
    globalSetup: ["test/global-setup.ts"],
    // Real containers, compose commands and llama-servers on a shared 2-core machine.
    testTimeout: 300_000,
    hookTimeout: 600_000,
    fileParallelism: false,
    maxWorkers: 1,
    attachmentsDir: "test-results/attachments",
  },
});
