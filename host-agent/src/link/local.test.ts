import { describe, expect, it } from "vitest";
import type { AgentApi, AgentEvent } from "../protocol.ts";
import { createLocalLink } from "./local.ts";

/** A stand-in agent: only emits the events a test gives it (the real agent's are covered by local.integration.test.ts). */
function standInAgent(): AgentApi & { emit(e: unknown): void } {
  const listeners = new Set<(e: AgentEvent) => void>();
  return {
    call: () => Promise.reject(new Error("stand-in agent: no calls")),
    onEvent(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    emit(e) {
      for (const l of listeners) l(e as AgentEvent);
    },
  };
}

describe("local link events", () => {
  it("gives listeners a log event as the wire would: equal, not the agent's object", async () => {
    const agent = standInAgent();
    const warnings: string[] = [];
    const link = createLocalLink({ agent, log: (_level, msg) => warnings.push(msg) });
    const got: AgentEvent[] = [];
    link.onEvent((e) => got.push(e));
    const withSeq = { type: "event", kind: "log", at: "2026-11-30T04:00:00.000Z", id: "m1", line: "srv  log_server_r: request: POST /v1/chat/completions 127.0.0.1 200", seq: 7 };
    const withoutSeq = { type: "event", kind: "log", at: "2026-11-30T04:00:00.001Z", id: "m1", line: "" };
    agent.emit(withSeq);
    agent.emit(withoutSeq);
    expect(got).toEqual([withSeq, withoutSeq]);
    expect(got[0]).not.toBe(withSeq);
    expect("seq" in got[1]!).toBe(false);
    expect(warnings).toEqual([]);
    await link.close();
  });

  it("still parses state events with the wire's schema: defaults filled, a malformed one dropped with a warning", async () => {
    const agent = standInAgent();
    const warnings: string[] = [];
    const link = createLocalLink({ agent, log: (_level, msg) => warnings.push(msg) });
    const got: AgentEvent[] = [];
    link.onEvent((e) => got.push(e));
    const status = { id: "m1", state: "ready", pid: 10, port: 8081, startedAt: null, readyAt: null, exitCode: null, signal: null, reason: null, logPath: null, specHash: null };
    agent.emit({ type: "event", kind: "state", at: "2026-11-30T04:00:00.000Z", status });
    agent.emit({ type: "event", kind: "state", at: "2026-11-30T04:00:00.000Z", status: { ...status, state: "dancing" } });
    expect(got).toHaveLength(1);
    expect(got[0]!.kind === "state" && got[0]!.status.logTail).toEqual([]);
    expect(warnings).toEqual(["dropped a malformed event from the local agent"]);
    await link.close();
  });
});
