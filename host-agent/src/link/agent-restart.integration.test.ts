/**
 * The agent ends while its ssh connection stays up (it crashed, was killed,
 * or an update replaced it): the link starts it again in a new session on
 * the same connection, and the channels open on that connection to model
 * servers' ports (what the gateway's requests and streams go through) carry
 * on. A real sshd with the key line of setup-ssh.sh --model-ports, the real
 * wrapper and agent; the "model server" is an echo server on the host's
 * loopback, so a channel's liveness is a round trip.
 */
import net from "node:net";
import type { Duplex } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { llamaServerBin } from "../../test/harness/llama-server.ts";
import { agentPids, installWrapper } from "../../test/harness/ssh-wrapper.ts";
import { sshdLinkConfig, startSshd, type SshdFixture } from "../../test/harness/sshd.ts";
import { AGENT_RESTART_MIN_GAP_MS, createSshLink } from "./ssh.ts";
import { hasTcpTunnel } from "./ssh-tunnel.ts";
import { silentLinkLog, type HostLink, type LinkStateChange } from "./types.ts";

let dirs: TestDirs;
let sshd: SshdFixture;
let echo: net.Server;
let echoPort: number;

beforeAll(async () => {
  dirs = await testDirs("synapse-agent-restart-");
  echo = net.createServer((s) => s.pipe(s));
  echoPort = await new Promise<number>((resolve) => echo.listen(0, "127.0.0.1", () => resolve((echo.address() as net.AddressInfo).port)));
  const wrapper = await installWrapper(`${dirs.root}/wrapper`, { SYNAPSE_STATE_DIR: dirs.stateDir, SYNAPSE_MODEL_ROOTS: dirs.modelRoot, LLAMA_SERVER_BIN: llamaServerBin(), SYNAPSE_LOG_LEVEL: "warn" });
  sshd = await startSshd({ forcedCommand: wrapper.path, keyOptions: `restrict,port-forwarding,permitopen="127.0.0.1:${echoPort}",permitlisten="NOWHERE:22",command="${wrapper.path}"` });
}, 60_000);

afterAll(async () => {
  echo?.close();
  await sshd?.dispose();
  await dirs?.cleanup();
});

function linkTo(): HostLink {
  return createSshLink(sshdLinkConfig(sshd, "mac-restart", { reconnect: { initialDelayMs: 100, maxDelayMs: 1000 }, keepaliveIntervalMs: 1000 }), { log: silentLinkLog });
}

function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (check()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`${what}: not within ${timeoutMs} ms`));
      setTimeout(poll, 20);
    };
    poll();
  });
}

/** Writes `text` into the channel and resolves with what comes back (the echo), within 5 s. */
function roundTrip(channel: Duplex, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = "";
    const timer = setTimeout(() => done(new Error(`no echo of ${JSON.stringify(text)} within 5 s (got ${JSON.stringify(got)}; channel destroyed: ${channel.destroyed})`)), 5_000);
    const onData = (d: Buffer) => {
      got += d.toString();
      if (got.length >= text.length) done(null);
    };
    const onClose = () => done(new Error(`the channel closed before the echo of ${JSON.stringify(text)} came`));
    const done = (err: Error | null) => {
      clearTimeout(timer);
      channel.off("data", onData);
      channel.off("close", onClose);
      if (err) reject(err);
      else resolve(got);
    };
    channel.on("data", onData);
    channel.once("close", onClose);
    channel.write(text);
  });
}

/** A link, connected, with its state changes recorded from now on, and a channel open to the echo port. */
async function connectedWithChannel(): Promise<{ link: HostLink; changes: LinkStateChange[]; channel: Duplex }> {
  const link = linkTo();
  const changes: LinkStateChange[] = [];
  link.onStateChange((c) => changes.push(c));
  try {
    await until("connected", () => link.state === "connected");
    if (!hasTcpTunnel(link)) throw new Error("the ssh link has no openTcp");
    return { link, changes, channel: await link.openTcp(echoPort) };
  } catch (err) {
    await link.close();
    throw err;
  }
}

describe("ssh link: the agent ends, the connection stays", () => {
  it("starts the agent again on the same connection; channels to model ports carry on; calls work again", async () => {
    const { link, changes, channel } = await connectedWithChannel();
    try {
      if (!hasTcpTunnel(link)) throw new Error("the ssh link has no openTcp");
      expect(await roundTrip(channel, "before\n")).toBe("before\n");

      const [agent, ...others] = await agentPids(await sshd.sessionPids());
      expect(others).toEqual([]);
      changes.length = 0;
      process.kill(agent!, "SIGKILL");
      await until("connecting after the agent's end", () => changes.some((c) => c.state === "connecting"));
      await until("connected again", () => link.state === "connected");

      // Never disconnected: the connection stayed, and so did the channel on it.
      expect(changes.map((c) => c.state)).toEqual(["connecting", "connected"]);
      expect(changes[0]).toMatchObject({ agentRestart: true, error: { message: "the agent session on host 'mac-restart' ended (killed by SIGKILL)" } });
      expect(await roundTrip(channel, "after\n")).toBe("after\n");
      // A new agent answers calls; a new channel opens on the same connection.
      const [again] = await agentPids(await sshd.sessionPids());
      expect(again).not.toBe(agent);
      expect(await link.call("status", {})).toEqual([]);
      const second = await link.openTcp(echoPort);
      expect(await roundTrip(second, "new\n")).toBe("new\n");
      channel.destroy();
      second.destroy();
    } finally {
      await link.close();
    }
  });

  it(`an agent that ends again within ${AGENT_RESTART_MIN_GAP_MS / 1000} s of its restart is not restarted in a loop: the link drops the connection and reconnects with its backoff`, async () => {
    const { link, changes, channel } = await connectedWithChannel();
    try {
      let channelClosed = false;
      channel.once("close", () => (channelClosed = true));
      // Read (ssh2 says 'close' on a channel of a dropped connection only once its end has been read).
      channel.resume();
      changes.length = 0;
      const [first] = await agentPids(await sshd.sessionPids());
      process.kill(first!, "SIGKILL");
      await until("connected again", () => changes.some((c) => c.state === "connected"));
      const [second] = await agentPids(await sshd.sessionPids());
      process.kill(second!, "SIGKILL");
      await until("disconnected", () => changes.some((c) => c.state === "disconnected"));
      // It says why it was not started again in place.
      expect(changes.find((c) => c.state === "disconnected")?.error?.message).toMatch(/^the agent session on host 'mac-restart' ended \(killed by SIGKILL\); not started again on the same connection: it ended \d+\.\d s after it was last started again there \(less than 5 s\)$/);
      await until("connected after the reconnect", () => link.state === "connected");
      expect(changes.map((c) => c.state)).toEqual(["connecting", "connected", "disconnected", "connecting", "connected"]);
      // The dropped connection took its channels with it.
      await until("the old connection's channel closed", () => channelClosed, 5_000);
      expect(await link.call("status", {})).toEqual([]);
    } finally {
      await link.close();
    }
  });
});
