/**
 * Setup file of the e2e project (runs in every test file's worker): whatever
 * app instances a file leaves running are stopped after it, pass or fail.
 */
import { afterAll } from "vitest";
import { stopAllApps } from "../test/harness/app-server";

afterAll(async () => {
  await stopAllApps();
});
