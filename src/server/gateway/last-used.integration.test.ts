/**
 * A model's LAST USED (lastUsedAt: the dashboard's "used … ago", the CLI's
 * LAST USED, and the idle countdown that /v1/models shows as idle_unload_at)
 * is the last request the model served: one that got a place and was
 * forwarded. A request the gateway refuses (409, 429) reached no model and
 * leaves it, and an on-demand model's idle deadline, as they were.
 *
 * Through the gateway's worker thread as the app runs it (testing/gateway-worker.ts),
 * bridged to the fleet fixture (migrated SQLite, local agent, real llama-server,
 * tiny models); read as a user reads it: the dashboard's servers.status rows
 * (the fleet's status view, after the worker's notes are in) and /v1/models.
 */
import OpenAI from "openai";
import type { ChatCompletionCreateParamsStreaming } from "openai/resources/chat/completions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyModel } from "../../../host-agent/src/gguf/tiny-model";
import { waitFor } from "~/server/services/fleet/testing/fixture";
import { setModelEnabled } from "~/server/services/registry/models";
import { gatewayFixture, type GatewayFixture, chat } from "./testing/gateway-fixture";
import { startGatewayWorker, type GatewayWorker } from "./testing/gateway-worker";


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("gateway: LAST USED is the last request served, not one refused", () => {
  let g: GatewayFixture;
  let w: GatewayWorker;

  beforeAll(async () => {
    // The fixture's own in-process gateway is not used here; its idle sweep is put off so that only the
    // worker's unloader (the app's) sets the idle deadlines.
    g = await gatewayFixture({ gateway: { idleSweepMs: 3_600_000 } });
    w = await startGatewayWorker(g);
  });
  afterAll(async () => {
    await w?.dispose();
    await g?.dispose();
  });

  /** The model's row as the dashboard reads it (servers.status), once the worker's held-back notes are in. */
  async function row(name: string) {
    await w.host.flushNotes(5_000);
    const r = (await g.f.fleet.status()).find((x) => x.name === name);
    if (!r) throw new Error(`no status row for ${name}`);
    return r;
  }

  /** The model as /v1/models lists it (from the worker). */
  async function listed(name: string) {
    const m = (await w.client.models.list()).data.find((x) => x.id === name) as unknown as { state: string; enabled: boolean; idle_unload_at?: number | null } | undefined;
    if (!m) throw new Error(`/v1/models does not list ${name}`);
    return m;
  }

  /** A completion the gateway is expected to refuse: its error. */
  async function refused(name: string): Promise<InstanceType<typeof OpenAI.APIError>> {
    const err = await w.client.chat.completions.create(chat(name)).then(
      () => null,
      (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
    );
    if (!err) throw new Error(`a completion for ${name} was answered; it should have been refused`);
    return err;
  }

  it("a served request sets it; a 409 for a stopped `always` model, and one for a disabled model, leave it as it was", async () => {
    const m = await g.addModel("steady");
    const started = await g.f.fleet.start(m.id, { wait: true });
    expect(started.state, started.error ?? "").toBe("ready");
    expect((await row("steady")).lastUsedAt).toBeNull();
    const t0 = Date.now();
    expect((await w.client.chat.completions.create(chat("steady"))).choices[0]?.message.content).toMatch(/^[a-z]+$/);
    const served = (await row("steady")).lastUsedAt;
    expect(served).not.toBeNull();
    expect(Date.parse(served!)).toBeGreaterThanOrEqual(t0);

    await g.f.fleet.stop(m.id);
    await waitFor("the worker to see steady stopped", async () => (await listed("steady")).state === "stopped", 10_000, 50);
    // A clock that moved: a stamp by the refusal would differ.
    await sleep(20);
    const err = await refused("steady");
    expect([err.status, err.code]).toEqual([409, "model_stopped"]);
    expect(await row("steady")).toMatchObject({ inFlight: 0, lastUsedAt: served });

    await g.addModel("switched-off", { enabled: false });
    const off = await refused("switched-off");
    expect([off.status, off.code]).toEqual([409, "model_disabled"]);
    expect(await row("switched-off")).toMatchObject({ inFlight: 0, lastUsedAt: null });
  });

  it("a 429 from a full queue leaves it at the served stream's start; the stream counts until it ends", async () => {
    const m = await g.addModel("one-place", { ctxSize: 4096, parallel: 1, queueLimit: 0 });
    await writeTinyModel(m.filePath, { contextLength: 4096 });
    const started = await g.f.fleet.start(m.id, { wait: true });
    expect(started.state, started.error ?? "").toBe("ready");
    const abort = new AbortController();
    const s = await w.client.chat.completions.create({ ...chat("one-place", { max_tokens: 3800, ignore_eos: true }), stream: true } as unknown as ChatCompletionCreateParamsStreaming, { signal: abort.signal });
    const it = s[Symbol.asyncIterator]();
    try {
      expect((await it.next()).done).toBe(false); // streaming: the one place is held
      const during = await row("one-place");
      expect(during.inFlight).toBe(1);
      expect(during.lastUsedAt).not.toBeNull();
      await sleep(20);
      const busy = await refused("one-place");
      expect(busy.status).toBe(429);
      expect(await row("one-place")).toMatchObject({ inFlight: 1, lastUsedAt: during.lastUsedAt });
      // The stream ends (its client leaves): last used at its end.
      abort.abort();
      await it.return?.();
      const after = await waitFor("the stream's end in the status", async () => {
        const r = await row("one-place");
        return r.inFlight === 0 ? r : null;
      }, 10_000, 20);
      expect(Date.parse(after.lastUsedAt!)).toBeGreaterThan(Date.parse(during.lastUsedAt!));
    } finally {
      abort.abort();
    }
  });

  it("an on-demand model refused 409 while loaded (disabled a moment ago) keeps the idle deadline its last served request gave it", async () => {
    const m = await g.addModel("lazy", { loadPolicy: "on-demand", idleTimeoutMs: 600_000 });
    expect((await w.client.chat.completions.create(chat("lazy"))).choices[0]?.message.content).toMatch(/^[a-z]+$/);
    const counting = await waitFor("the idle countdown after the served request", async () => {
      const r = await row("lazy");
      return r.idleUnloadAt !== null && r.inFlight === 0 ? r : null;
    }, 10_000, 20);
    // The worker's clock of the request's end, plus the idle time; the dashboard's last use is the main thread's
    // receipt of that end, a moment later.
    expect(Date.parse(counting.idleUnloadAt!) - Date.parse(counting.lastUsedAt!)).toBeGreaterThan(599_000);
    expect(Date.parse(counting.idleUnloadAt!) - Date.parse(counting.lastUsedAt!)).toBeLessThanOrEqual(600_000);
    const shown = (await listed("lazy")).idle_unload_at;
    expect(shown).toBe(Math.round(Date.parse(counting.idleUnloadAt!) / 1000));

    // Disabled as the model page does (an event; the server keeps running, and its idle clock with it).
    await setModelEnabled(g.f.t.db, { id: m.id, enabled: false }, { events: g.f.events });
    await waitFor("the worker to see lazy disabled", async () => !(await listed("lazy")).enabled, 10_000, 50);
    // More than a second later: a deadline the refusal moved would show in idle_unload_at's whole seconds.
    await sleep(1_100);
    const err = await refused("lazy");
    expect([err.status, err.code]).toEqual([409, "model_disabled"]);
    // Past the sweep the refusal's end asks for, and the worker's periodic one (1 s).
    await sleep(1_500);
    const after = await row("lazy");
    expect(after).toMatchObject({ state: "ready", inFlight: 0, lastUsedAt: counting.lastUsedAt, idleUnloadAt: counting.idleUnloadAt });
    expect((await listed("lazy")).idle_unload_at).toBe(shown);
  });

  it("an on-demand model started with its Start button after its idle unload counts its idle time from that start, not from its last use", async () => {
    const m = await g.addModel("again", { loadPolicy: "on-demand", idleTimeoutMs: 3_000 });
    expect((await w.client.chat.completions.create(chat("again"))).choices[0]?.message.content).toMatch(/^[a-z]+$/);
    await waitFor("the idle unload", async () => (await row("again")).state === "stopped", 15_000, 50);
    const lastUse = Date.parse((await row("again")).lastUsedAt!);
    // Longer than its idle time since that use, with the worker's sweeps (1 s) seeing it stopped meanwhile.
    await sleep(1_500);
    const t0 = Date.now();
    expect(t0 - lastUse).toBeGreaterThan(3_000);
    const started = await g.f.fleet.start(m.id, { wait: true });
    expect(started.state, started.error ?? "").toBe("ready");
    const counting = await waitFor("the idle countdown after the start", async () => {
      const r = await row("again");
      return r.idleUnloadAt !== null ? r : null;
    }, 10_000, 20);
    // Counted from a moment before the start (the last sweep that saw it stopped, at most 1 s before), not from
    // the use before its unload: that would have stopped it at once.
    expect(counting.state).toBe("ready");
    expect(Date.parse(counting.lastUsedAt!)).toBe(lastUse);
    expect(Date.parse(counting.idleUnloadAt!)).toBeGreaterThan(t0 + 1_000);
    const unload = await waitFor("its idle unload", async () => {
      const e = await g.f.t.db.event.findFirst({ where: { modelId: m.id, kind: "action", message: { contains: "unloaded after its idle time" } }, orderBy: { id: "desc" } });
      return e && e.at.getTime() > t0 ? e : null;
    }, 15_000, 50);
    expect(unload.at.getTime()).toBeGreaterThanOrEqual(Date.parse(counting.idleUnloadAt!));
  });
});
