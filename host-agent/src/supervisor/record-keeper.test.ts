/**
 * RecordKeeper.remove removes its own run's record, never a later run's that another agent on the same
 * state folder wrote under the same server id meanwhile (a stop and a start there before this agent saw
 * its run end).
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "./logger.ts";
import { RecordKeeper } from "./record-keeper.ts";
import { RecordStore, type ServerRecord } from "./records.ts";
import { serverSpecSchema } from "../protocol.ts";
import { specFor } from "../../test/harness/fixtures.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "synapse-records-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const record = (id: string, pid: number, startToken: string): ServerRecord => ({
  version: 1, id, pid, pgid: pid, startToken, startedAt: new Date().toISOString(), port: 8080, bindAddress: "127.0.0.1", binary: "/bin/llama-server",
  argv: ["--port", "8080"], logPath: path.join(dir, `${id}.log`), specHash: "h", spec: serverSpecSchema.parse(specFor(id, "/m/a.gguf", 8080)), readyAt: null, agentPid: 1,
});

describe("RecordKeeper.remove", () => {
  it("removes the record of its own run", async () => {
    const store = new RecordStore(dir);
    const keeper = new RecordKeeper("own", store, createLogger("silent"));
    await keeper.write(record("own", 100, "linux:1"));
    await keeper.remove();
    expect(store.readNow("own")).toBe("missing");
  });

  it("leaves a later run's record (another pid or start time) that another agent wrote under the same id", async () => {
    const store = new RecordStore(dir);
    const keeper = new RecordKeeper("shared", store, createLogger("silent"));
    await keeper.write(record("shared", 100, "linux:1"));
    const later = record("shared", 200, "linux:2");
    await store.write(later);
    await keeper.remove();
    expect(store.readNow("shared")).toMatchObject({ pid: 200, startToken: "linux:2" });
    // The same pid reused by a later process: told apart by its start time.
    await store.write(record("shared", 100, "linux:3"));
    await keeper.remove();
    expect(store.readNow("shared")).toMatchObject({ pid: 100, startToken: "linux:3" });
  });
});
