import { describe, expect, it } from "vitest";
import { loadProgress, stageOfLine } from "./load-progress";

describe("load progress", () => {
  it("reads llama-server's load steps from its log", () => {
    expect(stageOfLine("llama_model_loader: loaded meta data with 19 key-value pairs and 21 tensors from /m/a.gguf (version GGUF V3 (latest))")?.stage).toBe("reading the model's metadata");
    expect(stageOfLine("load_tensors: loading model tensors, this can take a while... (load_mode = mmap)")?.fraction).toBe(0.1);
    expect(stageOfLine("....................................................................................................")?.stage).toBe("tensors loaded");
    expect(stageOfLine("srv    load_model: model loaded")?.fraction).toBe(1);
    expect(stageOfLine("srv  log_server_r: request: GET /health 127.0.0.1 200")).toBeNull();
  });
  it("takes the further of the log's step and the time against the last load, never done by time alone", () => {
    expect(loadProgress({ startedAtMs: 0, nowMs: 3000, logged: null, expectedMs: 10_000 })).toEqual({ fraction: 0.3, stage: null, elapsedMs: 3000, expectedMs: 10_000 });
    expect(loadProgress({ startedAtMs: 0, nowMs: 3000, logged: { stage: "tensors loaded", fraction: 0.8 }, expectedMs: 10_000 }).fraction).toBe(0.8);
    expect(loadProgress({ startedAtMs: 0, nowMs: 30_000, logged: null, expectedMs: 10_000 }).fraction).toBe(0.95);
    expect(loadProgress({ startedAtMs: 0, nowMs: 30_000, logged: null, expectedMs: null }).fraction).toBeNull();
  });
});
