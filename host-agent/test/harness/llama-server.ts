/**
 * The real llama-server binary for integration tests. The vitest global
 * setup (test/global-setup.ts) builds or finds it and sets LLAMA_SERVER_BIN.
 */
import { accessSync, constants } from "node:fs";

export function llamaServerBin(): string {
  const bin = process.env.LLAMA_SERVER_BIN;
  if (!bin) throw new Error("LLAMA_SERVER_BIN is not set: run integration tests through vitest's integration project (its global setup builds llama-server)");
  accessSync(bin, constants.X_OK);
  return bin;
}
