/**
 * The ssh link against a real sshd (test/harness/sshd.ts), the real forced
 * command wrapper (scripts/ssh-wrapper.sh) starting the real agent CLI, and a
 * real llama-server.
 */
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentError } from "../protocol.ts";
import { freePort } from "../../test/harness/ports.ts";
import { specFor, testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { llamaServerBin } from "../../test/harness/llama-server.ts";
import { agentPids, installWrapper, type InstalledWrapper } from "../../test/harness/ssh-wrapper.ts";
import { sshdLinkConfig, sshExec, startSshd, type SshdFixture } from "../../test/harness/sshd.ts";
import { tinyModel } from "../../test/harness/tiny-model.ts";
import { describeHostLinkBehaviour, pidsRunning } from "./link-behaviour.ts";
import { createSshLink } from "./ssh.ts";
import type { SshLinkConfigInput } from "./ssh-config.ts";
import { silentLinkLog, type HostLink, type LinkState } from "./types.ts";

interface SshHost {
  dirs: TestDirs;
  wrapper: InstalledWrapper;
  sshd: SshdFixture;
  linkConfig(extra?: Partial<SshLinkConfigInput>): SshLinkConfigInput;
  dispose(): Promise<void>;
}

/** A "Mac": a state dir and model root, the wrapper with its conf, and sshd forcing the wrapper. */
async function sshHost(prefix: string): Promise<SshHost> {
  const dirs = await testDirs(prefix);
  const wrapper = await installWrapper(`${dirs.root}/wrapper`, {
    SYNAPSE_STATE_DIR: dirs.stateDir,
    SYNAPSE_MODEL_ROOTS: dirs.modelRoot,
    LLAMA_SERVER_BIN: llamaServerBin(),
    SYNAPSE_LOG_LEVEL: "warn",
    SYNAPSE_HEALTH_INTERVAL_MS: "500",
  });
  const sshd = await startSshd({ forcedCommand: wrapper.path });
  return {
    dirs,
    wrapper,
    sshd,
    linkConfig: (extra = {}) => sshdLinkConfig(sshd, "mac-test", { reconnect: { initialDelayMs: 100, maxDelayMs: 1000 }, keepaliveIntervalMs: 1000, ...extra }),
    async dispose() {
      // Whatever a test left running is stopped by the agent itself, through the wrapper.
      if (!sshd.running) await sshd.start().catch(() => {});
      await sshExec(sshd, "stop-metal-servers", { timeoutMs: 30_000 }).catch(() => {});
      await sshd.dispose();
      await dirs.cleanup();
    },
  };
}

function waitForState(link: HostLink, state: LinkState, timeoutMs = 20_000): Promise<void> {
  if (link.state === state) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`link stayed ${link.state}, never ${state}, within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = link.onStateChange((c) => {
      if (c.state === state) {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  });
}

async function rejection(p: Promise<unknown>): Promise<AgentError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(AgentError);
    return err as AgentError;
  }
  throw new Error("expected a rejection");
}

async function auditLines(wrapper: InstalledWrapper): Promise<string[]> {
  return (await readFile(wrapper.auditLog, "utf8").catch(() => "")).split("\n").filter(Boolean);
}

describeHostLinkBehaviour("ssh", async () => {
  const host = await sshHost("synapse-link-ssh-");
  const link = createSshLink(host.linkConfig(), { log: silentLinkLog });
  await waitForState(link, "connected");
  return {
    link,
    modelRoot: host.dirs.modelRoot,
    writeModel: (name) => tinyModel(host.dirs.modelRoot, name),
    freePort,
    spec: (id, model, port) => specFor(id, model, port),
    async teardown() {
      await link.close();
      await host.dispose();
    },
  };
});

describe("ssh link: connection loss and host keys", () => {
  let host: SshHost;
  beforeAll(async () => {
    host = await sshHost("synapse-link-drop-");
  });
  afterAll(async () => {
    await host?.dispose();
  });

  it("sshd stopped mid-session: pending calls fail naming the host, servers keep running, the link comes back", async () => {
    const link = createSshLink(host.linkConfig(), { log: silentLinkLog });
    try {
      await waitForState(link, "connected");
      const model = await tinyModel(host.dirs.modelRoot, "drop.gguf");
      const spec = specFor("steady", model, await freePort());
      const started = await link.call("start", { spec });
      expect(started.state).toBe("ready");

      // Freeze the remote agent so a call is certainly pending when the connection drops.
      const agents = await agentPids(await host.sshd.sessionPids());
      expect(agents).toHaveLength(1);
      const [agentPid] = agents;
      process.kill(agentPid!, "SIGSTOP");
      const pending = rejection(link.call("status", {}, { timeoutMs: 20_000 }));
      await new Promise((r) => setTimeout(r, 100));
      const down = waitForState(link, "disconnected");
      await host.sshd.stop();
      process.kill(agentPid!, "SIGCONT");
      await down;
      const err = await pending;
      expect(err.code).toBe("UNAVAILABLE");
      expect(err.message).toMatch(/link to host 'mac-test' dropped while status/);
      expect(err.cause).toBeInstanceOf(AgentError);

      // While down: new calls fail fast and say so; the server still serves.
      const t0 = Date.now();
      const fast = await rejection(link.call("status", {}));
      expect(fast.code).toBe("UNAVAILABLE");
      expect(fast.message).toContain("'mac-test' is unreachable");
      expect(Date.now() - t0).toBeLessThan(500);
      expect(await pidsRunning(model)).toEqual([started.pid]);
      expect((await fetch(`http://127.0.0.1:${spec.port}/health`)).status).toBe(200);

      await host.sshd.start();
      await waitForState(link, "connected");
      // A new agent re-adopted the server from its records.
      const [again] = await link.call("status", { ids: ["steady"] });
      expect(again).toMatchObject({ state: "ready", pid: started.pid });
      // The caller's retry of the same start after the reconnect: still one process.
      const retried = await link.call("start", { spec });
      expect(retried.pid).toBe(started.pid);
      expect(await pidsRunning(model)).toEqual([started.pid]);
      await link.call("stop", { id: "steady" });
    } finally {
      await link.close();
      // The next tests use the same sshd: up again whatever failed here (a failure must not become theirs).
      if (!host.sshd.running) await host.sshd.start();
    }
  });

  it("a peer that goes silent (frozen session, no FIN) is detected by keepalives", async () => {
    const link = createSshLink(host.linkConfig({ keepaliveIntervalMs: 500, keepaliveCountMax: 2 }), { log: silentLinkLog });
    const frozen: number[] = [];
    try {
      await waitForState(link, "connected");
      frozen.push(...(await host.sshd.sessionPids()));
      expect(frozen.length).toBeGreaterThan(0);
      for (const pid of frozen) process.kill(pid, "SIGSTOP");
      const t0 = Date.now();
      const pending = rejection(link.call("status", {}, { timeoutMs: 20_000 }));
      await waitForState(link, "disconnected", 10_000);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect((await pending).code).toBe("UNAVAILABLE");
      expect(link.state === "disconnected" || link.state === "connecting" || link.state === "connected").toBe(true);
    } finally {
      for (const pid of frozen) {
        try {
          process.kill(pid, "SIGKILL");
          process.kill(pid, "SIGCONT");
        } catch {
          // gone
        }
      }
      await link.close();
    }
  });

  it("a changed host key is refused before anything runs, and the link stops trying", async () => {
    const link = createSshLink(host.linkConfig(), { log: silentLinkLog });
    try {
      await waitForState(link, "connected");
      const oldPin = host.sshd.hostFingerprint();
      const auditBefore = await auditLines(host.wrapper);
      const failed = waitForState(link, "failed");
      await host.sshd.regenerateHostKey();
      await failed;
      expect(host.sshd.hostFingerprint()).not.toBe(oldPin);
      const err = await rejection(link.call("status", {}));
      expect(err.code).toBe("UNAVAILABLE");
      expect(err.message).toContain(host.sshd.hostFingerprint());
      expect(err.message).toContain(oldPin);
      // The wrapper never ran: no audit line, no agent.
      expect(await auditLines(host.wrapper)).toEqual(auditBefore);
      const sshdLog = await readFile(host.sshd.logPath, "utf8");
      const afterChange = sshdLog.slice(sshdLog.lastIndexOf("Server listening"));
      expect(afterChange).not.toContain("Accepted publickey");
    } finally {
      await link.close();
    }
  });

  it("a wrong pin from the start: refused, nothing runs", async () => {
    const auditBefore = await auditLines(host.wrapper);
    const link = createSshLink(host.linkConfig({ hostKeyFingerprints: [`SHA256:${"B".repeat(43)}`] }), { log: silentLinkLog });
    try {
      await waitForState(link, "failed");
      expect(await auditLines(host.wrapper)).toEqual(auditBefore);
    } finally {
      await link.close();
    }
  });

  it("no pin + trustOnFirstUse: accepts, reports the key for recording, then pins it", async () => {
    const trusted: string[] = [];
    const link = createSshLink(host.linkConfig({ hostKeyFingerprints: [], trustOnFirstUse: true }), {
      log: silentLinkLog,
      onHostKeyTrusted: (k) => {
        trusted.push(k.fingerprint);
        expect(k.knownHostsLine).toBe(`[127.0.0.1]:${host.sshd.port} ${host.sshd.hostPublicKey().split(" ").slice(0, 2).join(" ")}`);
      },
    });
    try {
      await waitForState(link, "connected");
      expect(trusted).toEqual([host.sshd.hostFingerprint()]);
      expect((await link.call("hello", { protocolVersion: 1 })).protocolVersion).toBe(1);
      // Pinned now: a new key after that is refused like any other change.
      const failed = waitForState(link, "failed");
      await host.sshd.regenerateHostKey();
      await failed;
    } finally {
      await link.close();
    }
  });

  it("a key that is not authorized: disconnected with a clear reason, retrying", async () => {
    const { generateEd25519 } = await import("../../test/harness/sshd.ts");
    const stranger = await generateEd25519(`${host.dirs.root}/stranger`, "stranger");
    const link = createSshLink(host.linkConfig({ privateKey: stranger.privateKey }), { log: silentLinkLog });
    try {
      const change = await new Promise<{ error?: AgentError; retryInMs?: number }>((resolve) => link.onStateChange((c) => c.state === "disconnected" && resolve(c)));
      expect(change.error?.message).toMatch(/'mac-test' .* refused the key/);
      expect(change.retryInMs).toBeGreaterThan(0);
    } finally {
      await link.close();
    }
  });
});
