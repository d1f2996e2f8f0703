import os from "node:os";
import { afterEach, describe, expect, it } from "vitest";
import { serverSpecSchema, type ServerStatus } from "../protocol.ts";
import type { StopCause } from "../shared/server-states.ts";
import type { Logger } from "./logger.ts";
import { ManagedServer } from "./managed-server.ts";
import { TreeScanner } from "./process-tree.ts";
import { RecordStore } from "./records.ts";
import { StopNotes } from "./stop-notes.ts";
import { InvalidTransitionError } from "./transitions.ts";

const errors: string[] = [];
const logger: Logger = { debug() {}, info() {}, warn() {}, error: (m) => void errors.push(m) };
const spec = serverSpecSchema.parse({
  id: "m", modelPath: "/models/m.gguf", port: 8081, ctxSize: 256, gpuLayers: 0, threads: 1, batchSize: 64, ubatchSize: 64,
  flashAttn: "off", loadMode: "mmap", parallel: 1, readinessDeadlineMs: 1000, stopGraceMs: 100,
});

function server(states: ServerStatus[]) {
  const ctx = {
    log: logger, records: new RecordStore(os.tmpdir()), stopNotes: new StopNotes(os.tmpdir()), instanceId: "test", settings: { logMaxBytes: 4096, healthIntervalMs: 1000 },
    scanner: new TreeScanner(0, logger), onState: (s: ServerStatus) => void states.push(s), onLog: () => {},
  };
  return new ManagedServer(spec, "hash", "/tmp/m.log", ctx);
}

/** The private state change, reached the way only a bug would. */
const transition = (s: ManagedServer, to: string, cause?: StopCause) =>
  (s as unknown as { transition(to: string, reason: string, cause?: StopCause): void }).transition(to, "test", cause);

const vitestFlag = process.env.VITEST;
afterEach(() => {
  process.env.VITEST = vitestFlag;
  errors.length = 0;
});

describe("ManagedServer state changes", () => {
  it("a change the table does not list throws under tests, and nothing is reported", () => {
    const states: ServerStatus[] = [];
    const s = server(states);
    expect(() => transition(s, "exited", "crash")).toThrow(InvalidTransitionError);
    expect(s.state).toBe("stopped");
    expect(states).toEqual([]);
  });

  it("outside tests it is logged as a bug, and the state follows what happened", () => {
    delete process.env.VITEST;
    const states: ServerStatus[] = [];
    const s = server(states);
    transition(s, "exited", "crash");
    expect(errors).toEqual(["bug: server m cannot go from stopped to exited (not in the transition table)"]);
    expect(states.map((x) => [x.state, x.cause])).toEqual([["exited", "crash"]]);
  });

  it("a listed change is reported with its cause; live states carry none", () => {
    const states: ServerStatus[] = [];
    const s = server(states);
    transition(s, "ready");
    transition(s, "stopping");
    transition(s, "stopped", "requested");
    expect(states.map((x) => [x.state, x.cause])).toEqual([["ready", null], ["stopping", null], ["stopped", "requested"]]);
  });
});
