/**
 * The behaviour every HostLink must show, as one vitest suite run against
 * each implementation (local.integration.test.ts, ssh.integration.test.ts)
 * with a real agent and a real llama-server. What passes here for `local`
 * must pass for `ssh`: that is what lets the control plane not care.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentError, PROTOCOL_VERSION, type AgentEvent, type ServerSpecInput } from "../protocol.ts";
import { pidsRunning } from "../../test/harness/fixtures.ts";
import type { HostLink } from "./types.ts";

export { pidsRunning };

export interface LinkUnderTest {
  link: HostLink;
  /** The agent's model root on the host. */
  modelRoot: string;
  /** Writes a tiny GGUF model into the model root and returns its path. */
  writeModel(name: string): Promise<string>;
  freePort(): Promise<number>;
  spec(id: string, modelPath: string, port: number): ServerSpecInput;
  /** Stops every server left running (through a fresh agent: the link may be closed) and cleans up. */
  teardown(): Promise<void>;
}


async function rejection(p: Promise<unknown>): Promise<AgentError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AgentError);
    return err as AgentError;
  }
  throw new Error("expected the call to reject");
}

export function describeHostLinkBehaviour(kind: string, setup: () => Promise<LinkUnderTest>): void {
  describe(`HostLink behaviour: ${kind}`, () => {
    let t: LinkUnderTest;
    const events: AgentEvent[] = [];

    beforeAll(async () => {
      t = await setup();
      t.link.onEvent((e) => events.push(e));
    });
    afterAll(async () => {
      if (!t) return;
      if (t.link.state !== "closed") await t.link.call("stopAll", { graceMs: 2000 }).catch(() => {});
      await t.teardown();
    });

    it("says hello with the protocol version and the host's model roots", async () => {
      expect(t.link.state).toBe("connected");
      const hello = await t.link.call("hello", { protocolVersion: PROTOCOL_VERSION });
      expect(hello.protocolVersion).toBe(PROTOCOL_VERSION);
      expect(hello.modelRoots).toContain(t.modelRoot);
    });

    it("starts a real llama-server, reports it ready with events, and a repeated start is the same process", async () => {
      const model = await t.writeModel(`${kind}-a.gguf`);
      const port = await t.freePort();
      const spec = t.spec("alpha", model, port);
      const first = await t.link.call("start", { spec });
      expect(first).toMatchObject({ id: "alpha", state: "ready", port });
      expect(first.pid).toBeGreaterThan(0);
      const health = await fetch(`http://127.0.0.1:${port}/health`);
      expect(health.status).toBe(200);
      // Same id + spec again (what a caller's retry after a reconnect sends): no second process.
      const again = await t.link.call("start", { spec });
      expect(again.pid).toBe(first.pid);
      expect(await pidsRunning(model)).toEqual([first.pid]);
      const [status] = await t.link.call("status", { ids: ["alpha"] });
      expect(status).toMatchObject({ id: "alpha", state: "ready", pid: first.pid, logTail: expect.any(Array) });
      const deadline = Date.now() + 5000;
      while (!events.some((e) => e.kind === "state" && e.status.id === "alpha" && e.status.state === "ready") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const states = events.filter((e) => e.kind === "state" && e.status.id === "alpha").map((e) => (e.kind === "state" ? e.status.state : ""));
      expect(states).toContain("starting");
      expect(states).toContain("ready");
    });

    it("stops it: the process is gone and the port is free", async () => {
      const [before] = await t.link.call("status", { ids: ["alpha"] });
      const stopped = await t.link.call("stop", { id: "alpha" });
      expect(stopped.state).toBe("stopped");
      expect(before?.pid).toBeGreaterThan(0);
      expect(() => process.kill(before!.pid!, 0)).toThrow();
      // Idempotent.
      expect((await t.link.call("stop", { id: "alpha" })).state).toBe("stopped");
    });

    it("runs many calls at once, matched to the right replies", async () => {
      const [m1, m2] = await Promise.all([t.writeModel(`${kind}-b.gguf`), t.writeModel(`${kind}-c.gguf`)]);
      const [p1, p2] = await Promise.all([t.freePort(), t.freePort()]);
      const starts = Promise.all([t.link.call("start", { spec: t.spec("beta", m1!, p1!) }), t.link.call("start", { spec: t.spec("gamma", m2!, p2!) })]);
      const statuses = await Promise.all(Array.from({ length: 40 }, (_, i) => t.link.call("status", i % 2 === 0 ? { ids: ["beta"] } : {})));
      expect(statuses).toHaveLength(40);
      const [b, g] = await starts;
      expect([b.id, b.state, g.id, g.state]).toEqual(["beta", "ready", "gamma", "ready"]);
      const all = await t.link.call("stopAll", { graceMs: 2000 });
      expect(all.filter((s) => s.id === "beta" || s.id === "gamma").map((s) => s.state)).toEqual(["stopped", "stopped"]);
    });

    it("carries the agent's errors intact: BAD_REQUEST names the field", async () => {
      const model = await t.writeModel(`${kind}-d.gguf`);
      const err = await rejection(t.link.call("start", { spec: { ...t.spec("delta", model, 80) } }));
      expect(err.code).toBe("BAD_REQUEST");
      expect(err.issues?.map((i) => i.path)).toContain("spec.port");
      const unknown = await rejection(t.link.call("logs", { id: "no-such-server" }));
      expect(["NOT_FOUND", "BAD_REQUEST"]).toContain(unknown.code);
    });

    it("puts a deadline on every call and honours an abort signal", async () => {
      const model = await t.writeModel(`${kind}-e.gguf`);
      const port = await t.freePort();
      const slow = await rejection(t.link.call("start", { spec: t.spec("epsilon", model, port) }, { timeoutMs: 1 }));
      expect(slow.code).toBe("TIMEOUT");
      expect(slow.message).toContain(t.link.host);
      const aborted = new AbortController();
      aborted.abort();
      expect((await rejection(t.link.call("status", {}, { signal: aborted.signal }))).code).toBe("TIMEOUT");
      // The start itself goes on (the agent owns it); the link is still usable.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const [s] = await t.link.call("status", { ids: ["epsilon"] });
        if (s?.state === "ready" || s?.state === "failed" || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect((await t.link.call("stop", { id: "epsilon" })).state).toBe("stopped");
    });

    it("after close: calls fail UNAVAILABLE, state is closed, servers are not touched", async () => {
      const model = await t.writeModel(`${kind}-f.gguf`);
      const port = await t.freePort();
      const s = await t.link.call("start", { spec: t.spec("zeta", model, port) });
      const states: string[] = [];
      t.link.onStateChange((c) => states.push(c.state));
      await t.link.close();
      await t.link.close();
      expect(t.link.state).toBe("closed");
      expect(states).toEqual(["closed"]);
      const err = await rejection(t.link.call("status", {}));
      expect(err.code).toBe("UNAVAILABLE");
      expect(err.message).toContain(t.link.host);
      // Closing a link is not stopping the fleet.
      expect(await pidsRunning(model)).toEqual([s.pid]);
      // teardown() stops it through a fresh agent, as a restarted control plane would.
    });
  });
}
