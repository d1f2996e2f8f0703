import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { AgentConfigError, DEFAULT_LOG_MAX_BYTES, loadAgentConfig } from "./env.ts";

describe("loadAgentConfig", () => {
  it("has defaults that work on a fresh machine", () => {
    const c = loadAgentConfig({});
    expect(c).toEqual({
      llamaServerBin: null,
      stateDir: path.join(os.homedir(), ".local", "state", "synapse"),
      modelRoots: [path.join(os.homedir(), "models")],
      logMaxBytes: DEFAULT_LOG_MAX_BYTES,
      healthIntervalMs: 5000,
      logLevel: "info",
    });
  });

  it("uses XDG_STATE_HOME, SYNAPSE_STATE_DIR and colon-separated roots", () => {
    expect(loadAgentConfig({ XDG_STATE_HOME: "/x/state" }).stateDir).toBe("/x/state/synapse");
    expect(loadAgentConfig({ XDG_STATE_HOME: "/x/state", SYNAPSE_STATE_DIR: "/s" }).stateDir).toBe("/s");
    const c = loadAgentConfig({ SYNAPSE_MODEL_ROOTS: "/a/models:/b/models/:~/m", LLAMA_SERVER_BIN: "/opt/homebrew/bin/llama-server", SYNAPSE_LOG_MAX_BYTES: "65536" });
    expect(c.modelRoots).toEqual(["/a/models", "/b/models", path.join(os.homedir(), "m")]);
    expect(c.llamaServerBin).toBe("/opt/homebrew/bin/llama-server");
    expect(c.logMaxBytes).toBe(65536);
  });

  it("treats empty values as unset", () => {
    expect(loadAgentConfig({ LLAMA_SERVER_BIN: "", SYNAPSE_MODEL_ROOTS: "" }).llamaServerBin).toBeNull();
  });

  it.each([
    [{ SYNAPSE_MODEL_ROOTS: "models:/b" }, /SYNAPSE_MODEL_ROOTS must be absolute paths separated by ':'/],
    [{ LLAMA_SERVER_BIN: "llama-server" }, /LLAMA_SERVER_BIN must be an absolute path/],
    [{ SYNAPSE_STATE_DIR: "state" }, /SYNAPSE_STATE_DIR must be an absolute path/],
    [{ SYNAPSE_LOG_MAX_BYTES: "10MB" }, /SYNAPSE_LOG_MAX_BYTES must be a whole number between 4096 and/],
    [{ SYNAPSE_LOG_MAX_BYTES: "12" }, /SYNAPSE_LOG_MAX_BYTES must be a whole number/],
    [{ SYNAPSE_LOG_LEVEL: "loud" }, /SYNAPSE_LOG_LEVEL must be one of debug, info, warn, error, silent/],
  ])("rejects %o naming the variable", (env, message) => {
    expect(() => loadAgentConfig(env)).toThrow(AgentConfigError);
    expect(() => loadAgentConfig(env)).toThrow(message);
  });

  it("says the value it got, quoted, once", () => {
    expect(() => loadAgentConfig({ SYNAPSE_LOG_MAX_BYTES: "10MB" })).toThrow(`invalid host agent environment: SYNAPSE_LOG_MAX_BYTES must be a whole number between 4096 and ${10 * 1024 * 1024 * 1024} (got "10MB")`);
    expect(() => loadAgentConfig({ LLAMA_SERVER_BIN: "llama-server" })).toThrow('invalid host agent environment: LLAMA_SERVER_BIN must be an absolute path (or start with ~/) (got "llama-server")');
    expect(() => loadAgentConfig({ SYNAPSE_HEALTH_INTERVAL_MS: "5s", SYNAPSE_LOG_LEVEL: "loud" })).toThrow(
      'invalid host agent environment: SYNAPSE_HEALTH_INTERVAL_MS must be a whole number between 100 and 3600000 (got "5s"); SYNAPSE_LOG_LEVEL must be one of debug, info, warn, error, silent (got "loud")',
    );
    // The roots' own message names the bad root: not said twice.
    expect(() => loadAgentConfig({ SYNAPSE_MODEL_ROOTS: "/a:models" })).toThrow(/^invalid host agent environment: SYNAPSE_MODEL_ROOTS must be absolute paths separated by ':' \(got "models"\)$/);
  });
});
