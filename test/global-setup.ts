/**
 * Vitest global setup for the integration and e2e projects: makes sure a real
 * llama-server exists (built once into a cache outside the repo, a no-op when
 * cached; LLAMA_SERVER_BIN overrides) and hands its path to every worker.
 */
import { execFileSync } from "node:child_process";
import path from "node:path";
import type { TestProject } from "vitest/node";

export default function setup(project: TestProject) {
  const script = path.resolve(import.meta.dirname, "../scripts/build-llama-server.sh");
  const out = execFileSync("bash", [script], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 30 * 60_000 });
  const bin = out.trim().split("\n").pop();
  if (!bin) throw new Error("build-llama-server.sh printed no binary path");
  process.env.LLAMA_SERVER_BIN = bin;
  project.provide("llamaServerBin", bin);
}

declare module "vitest" {
  export interface ProvidedContext {
    llamaServerBin: string;
  }
}
