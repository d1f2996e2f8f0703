/**
 * The gateway's kept-alive channels to a model on an ssh host whose ssh
 * connection died: a real sshd on loopback forcing the real
 * scripts/ssh-wrapper.sh (the host's agent), the real llama-server, the
 * official `openai` client (no retries, and a timeout, so that a request that
 * hangs fails the test instead of holding it), and the gateway in this thread
 * (createGateway: its channels are the link's ssh2 streams; the worker
 * thread's are sockets to this thread, which end as sockets do).
 *
 * Each case sends a request right after an answer, so the answer's channel
 * waits in the gateway's pool (raw-upstream.ts) for FREE_SOCKET_TIMEOUT_MS,
 * and then ends the ssh connection under it:
 *
 * - the host's sshd sessions killed (SIGKILL: a host that vanishes says
 *   nothing), the link connecting again: the next request is answered on a
 *   channel of the new connection once the link is connected (or, past the
 *   gateway's 5 s wait for a channel, told 502 host_unreachable), and the
 *   requests after it are served on the new connection; the same through
 *   the gateway's worker thread, as the app runs it;
 * - sshd stopped (sessions killed, nothing listens): the next request gets
 *   502 host_unreachable with the link's error, at once.
 *
 * On the old code the next request was sent on the old channel, which ssh2
 * had ended with its connection but which the pool still held for usable,
 * and hung with no first byte until the gateway's silence deadline (10 min).
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HostLink } from "synapse-host-agent/link";
import type { SshdFixture } from "../../../host-agent/test/harness/sshd";
import type { Host, Model } from "~/generated/prisma/client";
import { pidsRunning, waitFor } from "~/server/services/fleet/testing/fixture";
import { chat, gatewayFixture, type GatewayFixture } from "./testing/gateway-fixture";
import { startGatewayWorker } from "./testing/gateway-worker";
import { sshModelHost, type SshModelHost } from "./testing/ssh-model-host";

/** A request's deadline in the client (ms): far past what an answer or a 502 takes here, far below the gateway's silence deadline. */
const CLIENT_TIMEOUT_MS = 15_000;
/** How long the gateway waits for a channel, the link's connecting included (ms; gateway.ts makeTarget). */
const CHANNEL_WAIT_MS = 5_000;

let g: GatewayFixture;
let h: SshModelHost;
let sshd: SshdFixture;
let host: Host;
let model: Model;
let modelFile: string;
let client: OpenAI;
let link: HostLink;

beforeAll(async () => {
  // A short reconnect backoff: the link tries again while the old channel waits in the pool.
  g = await gatewayFixture({ fleet: { ssh: { reconnect: { initialDelayMs: 50, maxDelayMs: 50, jitter: 0 } } } });
  client = new OpenAI({ baseURL: `${g.url}/v1`, apiKey: "not-needed-on-loopback", maxRetries: 0, timeout: CLIENT_TIMEOUT_MS });
  h = await sshModelHost(g, { prefix: "synapse-gateway-lost-connection-", hostName: "far", modelName: "far-tiny" });
  ({ sshd, host, model, modelFile } = h);
  const started = await g.f.fleet.start(model.id, { wait: true });
  expect(started.state, started.error ?? "").toBe("ready");
  link = await g.f.links.get(host);
}, 120_000);

afterAll(async () => {
  await h?.dispose();
});

type ApiError = InstanceType<typeof OpenAI.APIError>;

/** One chat completion through `via` (default: the gateway in this thread): its answer's text or its error, and how long it took (ms). */
async function timed(via: OpenAI = client): Promise<{ text: string | null; err: unknown; ms: number }> {
  const t0 = Date.now();
  try {
    const r = await via.chat.completions.create(chat("far-tiny"));
    return { text: r.choices[0]?.message.content ?? "", err: null, ms: Date.now() - t0 };
  } catch (err) {
    return { text: null, err, ms: Date.now() - t0 };
  }
}

/** What a failed request's error says, for an assertion's message. */
function said(err: unknown): string {
  if (err instanceof OpenAI.APIConnectionTimeoutError) return `no answer within the client's ${CLIENT_TIMEOUT_MS} ms (the request hung)`;
  if (err instanceof OpenAI.APIError) return `${err.status} ${err.code ?? ""}: ${err.message}`;
  return String(err);
}

/** Answers one request now, so that its channel waits in the gateway's pool (for FREE_SOCKET_TIMEOUT_MS, upstream.ts). */
async function answeredOnce(via: OpenAI = client): Promise<void> {
  await waitFor("the link to be connected", async () => link.state === "connected", 20_000, 20);
  const first = await timed(via);
  expect(first.err, said(first.err)).toBeNull();
  expect(first.text).toMatch(/^[a-z]+$/);
}

/**
 * The host's sshd sessions killed (SIGKILL) right after an answer through `via`, the request after it sent as the
 * link connects again: answered on the new connection, or told 502 host_unreachable (link connecting) within the
 * gateway's wait for a channel; never sent on the old channel.
 */
async function sessionsKilled(name: string, via: OpenAI): Promise<void> {
  await answeredOnce(via);
  const sessions = await sshd.sessionPids();
  expect(sessions.length).toBeGreaterThan(0);
  const states: string[] = [];
  const off = link.onStateChange((c) => states.push(c.state));
  try {
    const killedAt = Date.now();
    for (const pid of sessions) process.kill(pid, "SIGKILL");
    // Sent as the link makes its new connection (its backoff is 50 ms): the old channel waits in the pool, a
    // few hundred ms idle, and the request must not be sent on it.
    await waitFor("the link to lose its connection and try again", async () => states.includes("disconnected") && link.state !== "disconnected", 5_000, 5);
    const sentAfterMs = Date.now() - killedAt;
    const next = await timed(via);
    console.log(`${name}, sessions killed: the next request, sent ${sentAfterMs} ms after (the link connecting again): ${next.err ? said(next.err) : "answered"} in ${next.ms} ms`);
    // Answered once the link is connected; or, on a machine so loaded that connecting (ssh, then the agent's
    // start and hello) takes longer than the gateway waits for a channel, told the host cannot be reached yet.
    if (next.err !== null) {
      expect(next.err, said(next.err)).toBeInstanceOf(OpenAI.APIError);
      expect([(next.err as ApiError).status, (next.err as ApiError).code, (next.err as ApiError).message], said(next.err)).toEqual([502, "host_unreachable", expect.stringContaining("(link connecting)")]);
    } else expect(next.text).toMatch(/^[a-z]+$/);
    expect(next.ms).toBeLessThan(CHANNEL_WAIT_MS + 2_000);
  } finally {
    off();
  }
  await waitFor("the link to be connected again", async () => link.state === "connected", 20_000, 20);
  const again = await timed(via);
  expect(again.err, said(again.err)).toBeNull();
  expect(again.text).toMatch(/^[a-z]+$/);
  // The new connection's sshd session carries the requests, not a killed one.
  const now = await sshd.sessionPids();
  expect(now.length).toBeGreaterThan(0);
  expect(now.some((pid) => sessions.includes(pid))).toBe(false);
}

describe("kept-alive channels of an ssh connection that died (real sshd, real llama-server, openai client)", () => {
  it("the host's sshd sessions killed, the link connecting again: the next request does not wait on the old channel, and is answered on a channel of the new connection", async () => {
    await sessionsKilled("gateway", client);
  }, 60_000);

  it("the same through the gateway's worker thread, as the app runs it (its channels are sockets to this thread, joined to the link's channels)", async () => {
    const w = await startGatewayWorker(g);
    try {
      await sessionsKilled("worker", new OpenAI({ baseURL: `${w.url}/v1`, apiKey: "not-needed-on-loopback", maxRetries: 0, timeout: CLIENT_TIMEOUT_MS }));
    } finally {
      await w.dispose();
    }
  }, 60_000);

  it("sshd stopped (its sessions killed, nothing listens): the next request gets 502 host_unreachable with the link's error at once; answered again once sshd is back", async () => {
    await answeredOnce();
    await sshd.stop({ dropSessions: true });
    try {
      await waitFor("the link to see its connection end", async () => link.state !== "connected", 5_000, 5);
      const next = await timed();
      console.log(`sshd stopped: the next request: ${next.err ? said(next.err) : "answered"} in ${next.ms} ms`);
      expect(next.err, said(next.err)).toBeInstanceOf(OpenAI.APIError);
      const err = next.err as ApiError;
      expect([err.status, err.code], said(err)).toEqual([502, "host_unreachable"]);
      expect(err.message).toMatch(/host 'far' is unreachable/);
      // The link's attempts to connect again are refused at once (nothing listens on the loopback port).
      expect(next.ms).toBeLessThan(2_000);
    } finally {
      await sshd.start();
    }
    let last = "";
    await waitFor(
      "a request to be answered again once sshd is back",
      async () => {
        const r = await timed();
        last = r.err ? `${said(r.err)} (link ${link.state})` : "";
        return r.err === null;
      },
      30_000,
      200,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}; the last request: ${last}`);
    });
  }, 90_000);
});
