/**
 * The gateway and an ssh host whose sshd is stopped: a real sshd on loopback
 * forcing the real scripts/ssh-wrapper.sh (the host's agent), the real
 * llama-server, and the official `openai` client (no retries). The host's
 * link has a long reconnect backoff (20 s), as a link that has been down a
 * while has (it grows to 30 s).
 *
 * - requests for an idle on-demand model there get 502 host_unreachable with
 *   the link's error at once, not after the readiness deadline (a trial's
 *   second request hung 2 minutes), and the model is not left queued;
 * - once sshd is back, a request makes the link try again: it is answered
 *   before the backoff's attempt;
 * - the same through the gateway's worker thread, as the app runs it; and
 *   the Hosts page's Test connection makes the fleet's link try again too.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HostLink } from "synapse-host-agent/link";
import type { SshdFixture } from "../../../host-agent/test/harness/sshd";
import type { Host, Model } from "~/generated/prisma/client";
import { EARLY_RETRY_MIN_GAP_MS } from "synapse-host-agent/link";
import { pidsRunning, waitFor } from "~/server/services/fleet/testing/fixture";
import { displayState } from "~/shared/display-state";
import { createAppMetrics } from "~/server/services/metrics/app-metrics";
import { testLogger } from "~/server/services/fleet/testing/db";
import { chat, gatewayFixture, type GatewayFixture } from "./testing/gateway-fixture";
import { startGatewayWorker } from "./testing/gateway-worker";
import { sshModelHost, type SshModelHost } from "./testing/ssh-model-host";

/** The link's backoff after a drop: long, so that an answer before it can only come from an early attempt. */
const BACKOFF_MS = 20_000;

let g: GatewayFixture;
let h: SshModelHost;
let sshd: SshdFixture;
let host: Host;
let model: Model;
let modelFile: string;

beforeAll(async () => {
  g = await gatewayFixture({ fleet: { ssh: { reconnect: { initialDelayMs: BACKOFF_MS, maxDelayMs: BACKOFF_MS, jitter: 0 } } } });
  h = await sshModelHost(g, { prefix: "synapse-gateway-unreachable-", hostName: "loopback-ssh", modelName: "remote-tiny", modelFields: { loadPolicy: "on-demand" } });
  ({ sshd, host, model, modelFile } = h);
}, 60_000);

afterAll(async () => {
  await h?.dispose();
});

type ApiError = InstanceType<typeof OpenAI.APIError>;

/** A model as /v1/models lists it: the fields about its state and its host's reach. */
type Listed = { id: string; state: string; server_state: string; host_reachable?: boolean; state_is_last_known?: boolean };

/** The models /v1/models lists through `client`, by name. */
async function listed(client: OpenAI): Promise<Map<string, Listed>> {
  return new Map((await client.models.list()).data.map((m) => [m.id, m as unknown as Listed]));
}

/** One chat completion: its error (null when answered) and how long it took (ms). */
async function timed(): Promise<{ err: ApiError | null; ms: number }> {
  const t0 = Date.now();
  const err = await g.client.chat.completions.create(chat("remote-tiny")).then(
    () => null,
    (e: unknown) => e as ApiError,
  );
  return { err, ms: Date.now() - t0 };
}

describe("the gateway and an ssh host whose sshd is stopped (real sshd, real llama-server, openai client)", () => {
  let link: HostLink;

  it("requests for an idle on-demand model there get 502 host_unreachable with the link's error at once, and the model is not left queued", async () => {
    const connectingSince = Date.now();
    link = await g.f.links.get(host);
    await waitFor("the link to connect", async () => link.state === "connected", 15_000, 20);
    await sshd.stop({ dropSessions: true });
    await waitFor("the link to see the drop", async () => link.state === "disconnected", 15_000, 20);
    // As in the trial, the link's last attempt was a while ago: a request may make it try again.
    await new Promise((r) => setTimeout(r, Math.max(0, connectingSince + EARLY_RETRY_MIN_GAP_MS + 200 - Date.now())));

    let attempts = 0;
    const offAttempts = link.onStateChange((c) => c.state === "connecting" && attempts++);
    // Two requests ~0.1 s apart, as the trial's (the second hung for the readiness deadline).
    const first = timed();
    await new Promise((r) => setTimeout(r, 100));
    const second = timed();
    const answers = await Promise.all([first, second]);
    console.log(`host down: the two requests were answered in ${answers.map((a) => `${a.ms} ms`).join(" and ")}`);
    for (const { err, ms } of answers) {
      expect(err).toBeInstanceOf(OpenAI.APIError);
      expect(err!.status).toBe(502);
      expect(err!.code).toBe("host_unreachable");
      // The host, and the link's error: the refused attempt the first request made it make.
      expect(err!.message).toContain("the gateway cannot reach its host loopback-ssh");
      expect(err!.message).toContain(`connect ECONNREFUSED 127.0.0.1:${sshd.port}`);
      // Well under the model's readiness deadline (30 s here, 120 s by default).
      expect(ms).toBeLessThan(10_000);
    }
    // The first request made the link try again; the second and a burst of ten made no more (one attempt per host every few seconds).
    const burst = await Promise.all(Array.from({ length: 10 }, () => timed()));
    expect(burst.map((b) => b.err?.code)).toEqual(Array(10).fill("host_unreachable"));
    offAttempts();
    expect(attempts).toBe(1);
    // /v1/models says what `synapse status` says: the state is the last known, the host cannot be reached.
    expect((await listed(g.client)).get("remote-tiny")).toMatchObject({ state: "idle", server_state: "stopped", host_reachable: false, state_is_last_known: true });
    // Nothing was started, nothing is wanted: the fleet page reads it idle, not queued.
    const view = (await g.f.fleet.status()).find((v) => v.modelId === model.id);
    expect(view).toMatchObject({ state: "stopped", desired: "stopped" });

    // A start made as the link went down (the requests' check passed a moment before) is not left wanted either.
    const outcome = await g.adapter.start(model.id);
    expect(outcome).toMatchObject({ state: "stopped", unreachable: true });
    expect(outcome.error).toContain("loopback-ssh");
    const after = (await g.f.fleet.status()).find((v) => v.modelId === model.id);
    expect(after).toMatchObject({ state: "stopped", desired: "stopped" });
    // What the fleet page's badge and the CLI's STATE column read (the old code: Queued, until the host came back).
    expect(displayState(after!.state, after!.desired, "on-demand").label).toBe("Idle");
    expect(after?.lastError).toContain("loopback-ssh");
    // The activity says why (an action event, appended in order by the bus).
    const said = async () => (await g.f.t.db.event.findFirst({ where: { modelId: model.id, kind: "action", message: { contains: "not started" } } }))?.message;
    await waitFor("the event saying why it was not started", async () => (await said()) !== undefined, 5_000, 20);
    // The link's words: refused at once while it waits out its backoff, or, when the start itself made it try again
    // (more than EARLY_RETRY_MIN_GAP_MS after the first request's attempt, as on a loaded machine), the failed attempt's.
    expect(await said()).toMatch(/^remote-tiny: not started: host loopback-ssh could not be reached \((host 'loopback-ssh' is unreachable|could not reach host 'loopback-ssh' to send start: ).*\); it is not started when the host is back/);
  }, 120_000);

  it("once sshd is back, a request makes the link try again: answered before the backoff's own attempt", async () => {
    const due = link.down?.nextAttemptAt ?? null;
    expect(due).not.toBeNull();
    await sshd.start();
    const t0 = Date.now();
    let tries = 0;
    for (;;) {
      tries += 1;
      const { err } = await timed();
      if (err === null) break;
      // Until the link has tried again: the link's error, at once.
      expect(err.status).toBe(502);
      if (Date.now() > t0 + 2 * BACKOFF_MS) throw new Error(`not answered within ${2 * BACKOFF_MS} ms of sshd's start: ${err.message}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const answeredAt = Date.now();
    console.log(`host back: answered ${answeredAt - t0} ms after sshd started (${tries} request(s)); the backoff's attempt was due ${due! - t0} ms after it`);
    expect(answeredAt).toBeLessThan(due!);
  }, 120_000);

  it("through the gateway's worker thread: 502 host_unreachable at once for the ready model and an idle one; Test connection, once the host is back, makes the fleet's link try again", async () => {
    // Another on-demand model on the host, never started (its port is not used).
    const idle = await g.f.t.db.model.create({ data: { name: "remote-idle", hostId: host.id, filePath: modelFile, port: model.port + 1, enabled: true, loadPolicy: "on-demand" } });
    const w = await startGatewayWorker(g);
    try {
      await sshd.stop({ dropSessions: true });
      await waitFor("the link to see the drop", async () => link.state === "disconnected", 15_000, 20);
      for (const name of ["remote-tiny", "remote-idle"]) {
        const t0 = Date.now();
        const err = await w.client.chat.completions.create(chat(name)).then(
          () => null,
          (e: unknown) => e as ApiError,
        );
        console.log(`worker, host down: ${name} answered in ${Date.now() - t0} ms: ${err?.message}`);
        expect([err?.status, err?.code]).toEqual([502, "host_unreachable"]);
        expect(err!.message).toContain("loopback-ssh");
        expect(Date.now() - t0).toBeLessThan(10_000);
      }
      expect((await g.f.fleet.status()).find((v) => v.modelId === idle.id)).toMatchObject({ state: "stopped", desired: "stopped" });
      // /v1/models (through the worker, as the app serves it): the ready model is the last known READY, as `synapse
      // status` says "ready (last known; host unreachable)"; a trial's answer was a bare state "ready".
      const whileDown = await listed(w.client);
      expect(whileDown.get("remote-tiny")).toMatchObject({ state: "ready", server_state: "ready", host_reachable: false, state_is_last_known: true });
      expect(whileDown.get("remote-idle")).toMatchObject({ state: "idle", host_reachable: false, state_is_last_known: true });

      // Past the bound since the link's last attempt (its backoff's start): Test connection may make it try again.
      const down = link.down!;
      await new Promise((r) => setTimeout(r, Math.max(0, down.nextAttemptAt! - BACKOFF_MS + EARLY_RETRY_MIN_GAP_MS + 200 - Date.now())));
      await sshd.start();
      const t1 = Date.now();
      const test = await g.f.links.testConnection(host);
      expect(test.host).toBe("loopback-ssh");
      await waitFor("the fleet's link to connect again", async () => link.state === "connected", 5_000, 20);
      expect((await listed(w.client)).get("remote-tiny")).toMatchObject({ host_reachable: true, state_is_last_known: false });
      console.log(`Test connection: the fleet's link was connected again ${Date.now() - t1} ms after it; its backoff's attempt was due ${down.nextAttemptAt! - t1} ms after it`);
      expect(Date.now()).toBeLessThan(down.nextAttemptAt!);
    } finally {
      await sshd.start().catch(() => undefined);
      await w.dispose();
    }
  }, 120_000);

  it("the metrics reader leaves a link that is down to its backoff: its reads of a model last known ready there make no connection attempt (a trial saw one every 5 to 10 s, and the backoff never grew)", async () => {
    await waitFor("the fleet's link connected", async () => link.state === "connected", 15_000, 20);
    expect((await g.f.fleet.status()).find((v) => v.modelId === model.id)?.state).toBe("ready");
    const metrics = createAppMetrics({ db: g.f.t.db, fleet: g.f.fleet, events: g.f.events, log: testLogger(), intervalMs: 0, links: g.f.links });
    try {
      await sshd.stop({ dropSessions: true });
      await waitFor("the link to see the drop", async () => link.state === "disconnected", 15_000, 20);
      // Past the bound since the link's last attempt: an early retry would be allowed now.
      await new Promise((r) => setTimeout(r, EARLY_RETRY_MIN_GAP_MS + 200));
      let attempts = 0;
      const off = link.onStateChange((c) => c.state === "connecting" && attempts++);
      for (let i = 0; i < 3; i++) await metrics.tick();
      off();
      expect(attempts, "connection attempts made by the metrics reader's reads").toBe(0);
      expect(link.state).toBe("disconnected");
    } finally {
      await metrics.close();
      await sshd.start();
    }
  }, 60_000);
});
