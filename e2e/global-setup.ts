/**
 * Global setup of the e2e project: the real llama-server (test/global-setup.ts,
 * built once and cached) and ONE production build of the app per test run,
 * shared by every app instance the tests start (test/harness/app-build.ts
 * says how it is made and why in a copy of the tree).
 *
 *   SYNAPSE_E2E_IMAGE_DIR=<dir>  use an existing image-shaped build instead of building
 *                                (e.g. the `image` folder a previous run kept with SYNAPSE_E2E_KEEP_BUILD=1)
 *   SYNAPSE_E2E_KEEP_BUILD=1     keep this run's build (its path is printed)
 */
import path from "node:path";
import type { TestProject } from "vitest/node";
import llamaServerSetup from "../test/global-setup";
import { buildAppImage, isAppImage, REPO_ROOT, removeAppImage } from "../test/harness/app-build";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  llamaServerSetup(project);

  const given = process.env.SYNAPSE_E2E_IMAGE_DIR;
  if (given) {
    const dir = path.resolve(given);
    if (!(await isAppImage(dir))) throw new Error(`SYNAPSE_E2E_IMAGE_DIR=${given} is not an image-shaped app build (server.js and scripts/start.mjs at its root)`);
    process.stderr.write(`[e2e] using the app build in ${dir}\n`);
    project.provide("appImageDir", dir);
    project.provide("appBuildError", "");
    return async () => undefined;
  }

  const logPath = path.join(REPO_ROOT, "test-results", "next-build.log");
  process.stderr.write(`[e2e] building the app (next build in a copy of the working tree; log: ${path.relative(process.cwd(), logPath)})\n`);
  let build: Awaited<ReturnType<typeof buildAppImage>>;
  try {
    build = await buildAppImage({ logPath });
  } catch (err) {
    // Not thrown here: a failed global setup would abort the unit and integration projects too.
    // Every startApp() in this run fails with this message instead.
    const message = (err as Error).message;
    process.stderr.write(`[e2e] the app build failed; every production-mode test will fail with:\n${message}\n`);
    project.provide("appImageDir", "");
    project.provide("appBuildError", message);
    return async () => undefined;
  }
  process.stderr.write(`[e2e] app built in ${(build.buildMs / 1000).toFixed(1)} s (build ${build.buildId}): ${build.imageDir}\n`);
  project.provide("appImageDir", build.imageDir);
  project.provide("appBuildError", "");
  return async () => {
    if (process.env.SYNAPSE_E2E_KEEP_BUILD === "1") process.stderr.write(`[e2e] kept the app build: ${build.imageDir}\n`);
    else await removeAppImage(build.imageDir);
  };
}
