import type { ServerStatus } from "synapse-host-agent/protocol";
import { describe, expect, it } from "vitest";
import { stopIncompleteColumn, stopIncompleteOf } from "./stop-incomplete";

type Seen = Pick<ServerStatus, "state" | "reason" | "stopIncomplete">;
const WORDS = "stop incomplete: port 8081 still held by pid 4242 (python3)";
const held = { port: 8081, holderPid: 4242, holderCommand: "python3" };

describe("stopIncompleteOf: a stop that left the port held, as the agent reports it", () => {
  it("an agent with the field: the field alone decides, whatever the reason's words", () => {
    // Set, under words that are not the old ones (an agent that reworded them): a stop that left the port held.
    expect(stopIncompleteOf({ state: "failed", reason: "the stop left port 8081 to pid 4242 (python3)", stopIncomplete: held })).toEqual(held);
    // Null, under the old words: not one (the agent said so).
    expect(stopIncompleteOf({ state: "failed", reason: WORDS, stopIncomplete: null })).toBeNull();
    expect(stopIncompleteOf({ state: "failed", reason: WORDS, stopIncomplete: held })).toEqual(held);
  });

  it("an older agent (no field): the reason's words, with the holder when they name one", () => {
    const older = (reason: string | null): Seen => ({ state: "failed", reason });
    expect(stopIncompleteOf(older(WORDS))).toEqual(held);
    expect(stopIncompleteOf(older("stop incomplete: port 8081 still held by pid 4242"))).toEqual({ port: 8081, holderPid: 4242, holderCommand: null });
    expect(stopIncompleteOf(older("stop incomplete: port 8081 still held (the holder is not visible to this user)"))).toEqual({ port: 8081, holderPid: null, holderCommand: null });
    // The row's last error is the reason and the log's tail: only the first line is read.
    expect(stopIncompleteOf(older(`${WORDS}; last log lines:\nsrv  stopping`))).toEqual(held);
    expect(stopIncompleteOf(older("exited with code 1 while loading; port 8081 still held by pid 4242 (python3)"))).toBeNull();
    expect(stopIncompleteOf(older(null))).toBeNull();
  });

  it("only of a failed status: a stop that left the port held ends failed", () => {
    for (const state of ["stopped", "stopping", "exited", "ready"] as const) {
      expect(stopIncompleteOf({ state, reason: WORDS, stopIncomplete: held })).toBeNull();
      expect(stopIncompleteOf({ state, reason: WORDS })).toBeNull();
    }
  });
});

describe("stopIncompleteColumn", () => {
  it("JSON of the field, null for none", () => {
    expect(JSON.parse(stopIncompleteColumn(held)!)).toEqual(held);
    expect(stopIncompleteColumn(null)).toBeNull();
  });
});
