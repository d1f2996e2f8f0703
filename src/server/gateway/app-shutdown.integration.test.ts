/**
 * The app shutting down (SIGTERM, Ctrl-C, `docker compose down`: Fleet.shutdown) while the gateway answers
 * requests (the real llama-server, the official `openai` client). A reply being written is finished before its
 * server is stopped, up to the shutdown's drain; new work, and work waiting for a place or a start, is refused
 * at once with 503 app_shutting_down saying what the shutdown does; a reply still going at the drain's end is
 * ended with those words.
 *
 * Found by a trial: the reply being written was cut (503 "model_stopping … sent again, it is answered once the
 * model runs", which after a shutdown it is not), and requests that waited got 409 "start it with its Start
 * button in the dashboard" while the app itself was going.
 */
import OpenAI from "openai";
import type { ChatCompletionCreateParamsStreaming } from "openai/resources/chat/completions";
import { afterEach, describe, expect, it } from "vitest";
import { writeTinyModel } from "../../../host-agent/src/gguf/tiny-model";
import { isAlive } from "../../../host-agent/test/harness/fixtures";
import { statusOf, waitFor } from "~/server/services/fleet/testing/fixture";
import type { Model } from "~/generated/prisma/client";
import { viewLinks } from "~/server/services/fleet/testing/stand-in-older-agent";
import { callGate } from "~/server/services/fleet/testing/call-gate";
import { gatewayFixture, type GatewayFixture, chat } from "./testing/gateway-fixture";
import { startGatewayWorker, type GatewayWorker } from "./testing/gateway-worker";

let g: GatewayFixture | null = null;
let w: GatewayWorker | null = null;
afterEach(async () => {
  await w?.dispose();
  w = null;
  await g?.dispose();
  g = null;
});


/** How a request ended: its status, error code, message and headers (200 with the reply when answered). */
async function outcome(p: Promise<unknown>): Promise<{ status: number | undefined; code: string | null | undefined; message: string; headers: Record<string, string>; value?: unknown }> {
  try {
    return { status: 200, code: null, message: "", headers: {}, value: await p };
  } catch (err) {
    if (err instanceof OpenAI.APIError) return { status: err.status, code: err.code, message: err.message, headers: Object.fromEntries(err.headers?.entries() ?? []) };
    throw err;
  }
}

/** `longer` (one place, a queue of 4, room for a reply of many seconds) started; `lazy` on-demand, not loaded. */
async function setup(via: "gateway" | "worker"): Promise<{ client: OpenAI; longer: Model; lazy: Model }> {
  g = await gatewayFixture();
  const longer = await g.addModel("longer", { ctxSize: 65_536, concurrency: 1, queueLimit: 4 });
  await writeTinyModel(longer.filePath, { contextLength: 65_536 });
  const lazy = await g.addModel("lazy", { loadPolicy: "on-demand" });
  const r = await g.f.fleet.start(longer.id, { wait: true });
  expect(r.state, r.error ?? "").toBe("ready");
  if (via === "worker") w = await startGatewayWorker(g);
  return { client: via === "worker" ? w!.client : g.client, longer, lazy };
}

/**
 * A streamed reply of `tokens` tokens; `going` resolves once `after` chunks came (default 3), `ended` with how it
 * ended. `signal`: the client leaves when it aborts.
 */
function stream(client: OpenAI, tokens: number, options: { after?: number; signal?: AbortSignal } = {}): { going: Promise<void>; ended: Promise<{ chunks: number; finish: string | null; error: unknown }> } {
  let going!: () => void;
  const started = new Promise<void>((r) => (going = r));
  const after = options.after ?? 3;
  const ended = (async () => {
    let chunks = 0;
    let finish: string | null = null;
    try {
      const s = await client.chat.completions.create({ ...chat("longer", { max_tokens: tokens, ignore_eos: true }), stream: true } as unknown as ChatCompletionCreateParamsStreaming, options.signal ? { signal: options.signal } : undefined);
      for await (const c of s) {
        if (++chunks === after) going();
        finish = c.choices[0]?.finish_reason ?? finish;
      }
      return { chunks, finish, error: null };
    } catch (error) {
      going();
      return { chunks, finish, error };
    }
  })();
  return { going: started, ended };
}

describe("the app shutting down under the gateway's requests (real llama-server, openai client)", () => {
  it.each(["gateway", "worker"] as const)(
    "stopping its servers (%s): the reply being written is finished before its server stops; queued and new requests, and a request for an on-demand model, get 503 app_shutting_down at once; nothing is started",
    async (via) => {
      const { client, longer, lazy } = await setup(via);
      // Long enough to be under way when the shutdown begins, short enough to end well within the drain (10 s).
      const reply = stream(client, 3000);
      await reply.going;
      const queued = outcome(client.chat.completions.create(chat("longer")));
      await waitFor("the second request to queue", async () => g!.adapter.usage(longer.id).inFlight === 2, 5000, 20);

      expect(g!.f.fleet.shutdownState(), "nothing to show while the app runs").toBeNull();
      const began = Date.now();
      const shutdown = g!.f.fleet.shutdown({ stopServers: true });
      // What every page's banner reads (servers.shutdown): the wait, until when, and the reply it waits for.
      expect(g!.f.fleet.shutdownState()).toMatchObject({ stopServers: true, phase: "waiting" });
      expect(Date.parse(g!.f.fleet.shutdownState()!.drainUntil) - began).toBeGreaterThanOrEqual(9_000);
      const q = await queued;
      // The reply alone once the refused one's end is told (through the worker, in its next batch of notes).
      await expect.poll(() => g!.f.fleet.shutdownState()?.requestsInFlight, { timeout: 2000 }).toBe(1);
      const refusedAfterMs = Date.now() - began;
      expect(q).toMatchObject({ status: 503, code: "app_shutting_down" });
      expect(q.message).toBe(
        '503 the app is shutting down: the request for model "longer" was not sent to it. The app stops its model servers and exits; at its next start, models with load policy "always" stay stopped until started (START ALL ENABLED), on-demand ones start on a request',
      );
      expect(q.headers["x-should-retry"]).toBe("false");

      const fresh = await outcome(client.chat.completions.create(chat("longer")));
      expect(fresh).toMatchObject({ status: 503, code: "app_shutting_down" });
      const onDemand = await outcome(client.chat.completions.create(chat("lazy")));
      expect(onDemand).toMatchObject({ status: 503, code: "app_shutting_down" });
      expect(onDemand.message).toContain('the request for model "lazy" was not sent to it');

      const ended = await reply.ended;
      expect(ended.error, `the reply was finished (it ended with ${String(ended.error)})`).toBeNull();
      expect(ended.finish).toBe("length");
      // The queued request was refused while the reply still went on (not when its place came free).
      expect(refusedAfterMs).toBeLessThan(Date.now() - began);

      const stopped = await shutdown;
      expect(stopped.map((s) => [s.name, s.state])).toEqual([["longer", "stopped"]]);
      expect(g!.f.fleet.shutdownState()).toMatchObject({ phase: "stopping", requestsInFlight: 0 });
      // Said in the activity the dashboard shows, as it began.
      const said = await g!.f.t.db.event.findMany({ where: { kind: "action", modelId: null }, orderBy: { id: "asc" } });
      expect(said.map((e) => e.message)).toContainEqual(expect.stringMatching(/^the app is shutting down \(stopping every server it manages\): new gateway requests are refused \(503 app_shutting_down\); it first waits up to 10 s for the \d+ requests? in flight$/));
      expect(await statusOf(g!.f, "longer")).toMatchObject({ state: "stopped", cause: "shutdown" });
      const lazyState = await statusOf(g!.f, "lazy");
      expect(lazyState.pid, "the on-demand model was not started by the request during the shutdown").toBeNull();
      expect(lazyState.state).toBe("stopped");
      expect(lazy.id).toBeTruthy();
    },
    60_000,
  );

  it("a reply still going at the drain's end is ended with the shutdown's words, and the server is then stopped", async () => {
    const { client, longer } = await setup("gateway");
    const reply = stream(client, 60_000);
    await reply.going;
    const { pid } = await statusOf(g!.f, "longer");

    const began = Date.now();
    const stopped = await g!.f.fleet.shutdown({ stopServers: true, drainMs: 1000 });
    const tookMs = Date.now() - began;
    const ended = await reply.ended;
    expect(ended.error, `the stream ended with an error event (it ended with ${String(ended.error)})`).toBeInstanceOf(OpenAI.APIError);
    expect((ended.error as InstanceType<typeof OpenAI.APIError>).message).toBe(
      'model "longer": the app is shutting down and the request had not ended 1 s after, the longest the app waits for requests in flight; it was ended. The app stops its model servers and exits; at its next start, models with load policy "always" stay stopped until started (START ALL ENABLED), on-demand ones start on a request',
    );
    expect(ended.chunks).toBeGreaterThan(3);
    expect(stopped.map((s) => [s.name, s.state])).toEqual([["longer", "stopped"]]);
    // The drain (1 s) and the stop, not the stop grace's SIGKILL after a server that waited for its client.
    expect(tookMs).toBeLessThan(10_000);
    expect(isAlive(pid!), "the server's process is gone").toBe(false);
    expect(g!.adapter.usage(longer.id).inFlight).toBe(0);
  }, 60_000);

  it("a reply whose server crashes during the drain is told that, not that it outlasted the drain", async () => {
    const { client } = await setup("gateway");
    const reply = stream(client, 60_000);
    await reply.going;
    const { pid } = await statusOf(g!.f, "longer");

    const shutdown = g!.f.fleet.shutdown({ stopServers: true });
    await new Promise((r) => setTimeout(r, 300));
    process.kill(pid!, "SIGKILL");
    const ended = await reply.ended;
    expect(ended.error).toBeInstanceOf(OpenAI.APIError);
    const message = (ended.error as InstanceType<typeof OpenAI.APIError>).message;
    expect(message).not.toContain("had not ended");
    expect(message).toMatch(/^model "longer": its server exited \(crashed: killed by SIGKILL\) while the app is shutting down; the request was ended with it\. The app stops its model servers and exits/);
    await shutdown;
    // Stopping its servers: left stopped for the next start, no restart planned at the crash.
    expect(await statusOf(g!.f, "longer")).toMatchObject({ state: "stopped", desired: "stopped", nextRestartAt: null, cause: "shutdown" });
  }, 60_000);

  it("leaving its servers running, a server that crashes during the drain is restarted by the next app, as one that crashes while the app is away is", async () => {
    const { client } = await setup("gateway");
    const reply = stream(client, 60_000);
    await reply.going;
    const { pid } = await statusOf(g!.f, "longer");

    const shutdown = g!.f.fleet.shutdown({ stopServers: false });
    await new Promise((r) => setTimeout(r, 300));
    process.kill(pid!, "SIGKILL");
    await reply.ended;
    expect(await shutdown).toEqual([]);
    const left = await statusOf(g!.f, "longer");
    expect(left.state).toBe("exited");
    expect(left.nextRestartAt, "its restart recorded as planned, for the next app").not.toBeNull();

    // The next app (same database, the agent's state folder as the first left it).
    await g!.f.restart({ stopServers: false });
    await g!.f.fleet.adopt({ timeoutMs: 5000 });
    const again = await waitFor("restarted by the next app and ready", async () => {
      const s = await statusOf(g!.f, "longer");
      return s.state === "ready" && s.pid !== pid ? s : null;
    }, 30_000);
    expect(again).toMatchObject({ restarts: 1, nextRestartAt: null });
  }, 90_000);

  it("through the worker, a reply that began a moment before the shutdown, its begin not yet told to the main thread (the worker sends its notes in batches, at most every 50 ms): waited for and finished, not cut at once", async () => {
    const { client, longer } = await setup("worker");
    // The moment: the reply's first chunk is here (the worker forwarded it) while the main thread does not count it
    // yet. Tried again, up to 10 times, when the worker's notes came first (a slow first chunk on a busy machine).
    let caught: ReturnType<typeof stream> | null = null;
    for (let attempt = 0; attempt < 10 && !caught; attempt++) {
      const leave = new AbortController();
      const reply = stream(client, 3000, { after: 1, signal: leave.signal });
      await reply.going;
      if (g!.adapter.usage(longer.id).inFlight === 0) {
        caught = reply;
        break;
      }
      leave.abort();
      await reply.ended;
      await waitFor("the left reply to end", async () => g!.adapter.usage(longer.id).inFlight === 0, 5000, 20);
    }
    if (!caught) throw new Error("the main thread counted the reply before its first chunk came, 10 times: the moment this test needs did not come");

    const began = Date.now();
    const shutdown = g!.f.fleet.shutdown({ stopServers: true });
    const ended = await caught.ended;
    expect(ended.error, `the reply was finished (it ended with ${String(ended.error)} ${Date.now() - began} ms into the shutdown)`).toBeNull();
    expect(ended.finish).toBe("length");
    expect((await shutdown).map((s) => [s.name, s.state])).toEqual([["longer", "stopped"]]);
  }, 60_000);

  it("a gateway worker started once the shutdown began (the app starts a worker that exited again, 1 s on) is told of it: its work is refused, not forwarded", async () => {
    const { longer } = await setup("gateway");
    // Servers left running, nothing in flight: the drain ends at once, as the app then closes its runtime and exits.
    expect(await g!.f.fleet.shutdown({ stopServers: false })).toEqual([]);
    w = await startGatewayWorker(g!);
    const late = await outcome(w.client.chat.completions.create(chat("longer")));
    expect(late).toMatchObject({ status: 503, code: "app_shutting_down" });
    expect(late.headers["retry-after"]).toBe("5");
    expect(g!.adapter.usage(longer.id).lastUsedAt, "not served").toBeNull();
  }, 60_000);

  it("a request for an on-demand model that waits for the model's idle unload to finish gets 503 app_shutting_down at once, and the drain does not wait for it", async () => {
    // The agent's stop calls held at the link: the idle unload stays under way as long as the test needs.
    const { gate, view } = callGate();
    g = await gatewayFixture({ fleet: { viewLinks: (pool) => viewLinks(pool, view) }, gateway: { idleSweepMs: 50 } });
    const lazy = await g.addModel("lazy", { loadPolicy: "on-demand", idleTimeoutMs: 300 });
    const r = await g.f.fleet.start(lazy.id, { wait: true });
    expect(r.state, r.error ?? "").toBe("ready");
    try {
      gate.holding.add("stop");
      await waitFor("the idle unload's stop to go out", async () => gate.held.length === 1, 10_000, 20);
      const waiting = outcome(g.client.chat.completions.create(chat("lazy")));
      await waitFor("the request to wait for the unload", async () => g!.adapter.usage(lazy.id).inFlight === 1, 5000, 20);

      const began = Date.now();
      const shutdown = g.f.fleet.shutdown({ stopServers: false });
      const answered = await Promise.race([waiting, new Promise<null>((res) => setTimeout(() => res(null), 3000))]);
      expect(answered, "answered within 3 s, the unload still under way").toMatchObject({ status: 503, code: "app_shutting_down" });
      expect(await shutdown).toEqual([]);
      expect(Date.now() - began, "the drain ended with the request, not after its 10 s").toBeLessThan(3000);
    } finally {
      gate.holding.clear();
      for (const call of gate.held.splice(0)) call.release();
    }
  }, 60_000);

  it("leaving its servers running (SYNAPSE_LEAVE_SERVERS_RUNNING): the reply is finished, new work is told to come back (Retry-After), and the server keeps running", async () => {
    const { client } = await setup("worker");
    const reply = stream(client, 3000);
    await reply.going;
    const { pid } = await statusOf(g!.f, "longer");

    const shutdown = g!.f.fleet.shutdown({ stopServers: false });
    const fresh = await outcome(client.chat.completions.create(chat("longer")));
    expect(fresh).toMatchObject({ status: 503, code: "app_shutting_down" });
    expect(fresh.message).toBe('503 the app is shutting down: the request for model "longer" was not sent to it. Its model servers keep running and its next start takes them over: send the request again then');
    expect(fresh.headers["retry-after"]).toBe("5");
    expect(fresh.headers["x-should-retry"]).toBeUndefined();

    const ended = await reply.ended;
    expect(ended.error, `the reply was finished (it ended with ${String(ended.error)})`).toBeNull();
    expect(ended.finish).toBe("length");
    expect(await shutdown).toEqual([]);
    expect(g!.f.fleet.shutdownState()).toMatchObject({ stopServers: false, phase: "exiting" });
    expect(isAlive(pid!), "the server still runs").toBe(true);
  }, 60_000);
});
