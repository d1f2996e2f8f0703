/**
 * A model stopped or restarted while the gateway answers requests on it (the
 * real llama-server, the official `openai` client): the requests it was
 * answering end at once, told why (llama-server waits for their connections
 * before it exits on its SIGTERM); a request waiting for a place is refused for
 * what the model now is (409 after a stop) or served by the new server
 * (after a restart).
 *
 * Found by a trial: llama-server, asked to stop, waits for the connections of
 * the requests it was answering; a stream stalled for the stop grace, then
 * broke with "terminated", the stop took the grace and a SIGKILL, and the
 * queued request got 502 "nothing listens".
 */
import OpenAI from "openai";
import type { ChatCompletionCreateParamsStreaming } from "openai/resources/chat/completions";
import { afterEach, describe, expect, it } from "vitest";
import { createHostAgent } from "../../../host-agent/src/agent";
import { writeTinyModel } from "../../../host-agent/src/gguf/tiny-model";
import { agentOptions } from "../../../host-agent/test/harness/fixtures";
import type { Model } from "~/generated/prisma/client";
import { statusOf, waitFor, type FleetFixtureOptions } from "~/server/services/fleet/testing/fixture";
import { anySlotBusy, gatewayFixture, type GatewayFixture, chat } from "./testing/gateway-fixture";
import { startGatewayWorker, type GatewayWorker } from "./testing/gateway-worker";
import { RESTART_GAP_WAIT_MS } from "./readiness";

let g: GatewayFixture | null = null;
let w: GatewayWorker | null = null;
afterEach(async () => {
  await w?.dispose();
  w = null;
  await g?.dispose();
  g = null;
});


/** One place, a queue of 4, room for a generation of many seconds (a file trained for 65536 tokens); started. */
async function setup(via: "gateway" | "worker", fleet: NonNullable<FleetFixtureOptions["fleet"]> = {}): Promise<{ client: OpenAI; model: Model }> {
  g = await gatewayFixture({ fleet: { fleet } });
  const model = await g.addModel("longer", { ctxSize: 65_536, concurrency: 1, queueLimit: 4 });
  await writeTinyModel(model.filePath, { contextLength: 65_536 });
  const r = await g.f.fleet.start(model.id, { wait: true });
  expect(r.state, r.error ?? "").toBe("ready");
  if (via === "worker") w = await startGatewayWorker(g);
  return { client: via === "worker" ? w!.client : g.client, model };
}

/** A stream that generates for many seconds; resolves with how it ended once it does. */
function longStream(client: OpenAI): { firstChunk: Promise<void>; ended: Promise<{ chunks: number; error: unknown }> } {
  let first!: () => void;
  const firstChunk = new Promise<void>((r) => (first = r));
  const ended = (async () => {
    let chunks = 0;
    try {
      const s = await client.chat.completions.create({ ...chat("longer", { max_tokens: 40_000, ignore_eos: true }), stream: true } as unknown as ChatCompletionCreateParamsStreaming);
      for await (const _ of s) if (++chunks === 3) first();
      return { chunks, error: null };
    } catch (error) {
      first();
      return { chunks, error };
    }
  })();
  return { firstChunk, ended };
}

/** How a request ended: its status and error code (200 and null when answered). */
async function outcome(p: Promise<unknown>): Promise<{ status: number | undefined; code: string | null | undefined; message: string }> {
  try {
    await p;
    return { status: 200, code: null, message: "" };
  } catch (err) {
    if (err instanceof OpenAI.APIError) return { status: err.status, code: err.code, message: err.message };
    throw err;
  }
}

describe("a model stopped or restarted under the gateway's requests (real llama-server, openai client)", () => {
  it.each(["gateway", "worker"] as const)("stopped mid-stream (%s): the stream ends at once with an error event saying why, the queued request gets 409 saying how to start it", async (via) => {
    const { client, model } = await setup(via);
    const stream = longStream(client);
    await stream.firstChunk;
    const queued = outcome(client.chat.completions.create(chat("longer")));
    await waitFor("the second request to queue", async () => g!.adapter.usage(model.id).inFlight === 2, 5000, 20);

    const stopped = await g!.f.fleet.stop(model.id);
    expect(stopped.state).toBe("stopped");

    const ended = await stream.ended;
    expect(ended.error, "the stream ended with an error").toBeInstanceOf(OpenAI.APIError);
    expect((ended.error as InstanceType<typeof OpenAI.APIError>).message).toMatch(/^model "longer" is stopping \(stop requested\): the request was ended with its server; sent again, it is answered once the model runs, or told why not$/);
    expect(ended.chunks).toBeGreaterThanOrEqual(3);

    expect(await queued).toMatchObject({ status: 409, code: "model_stopped" });
    // The stream was ended by the gateway as the stop began (its words above), not by the server's end. The server
    // then exits on its SIGTERM or, when its HTTP threads still wait on a client, on the agent's second SIGTERM
    // 2 s later (terminate.ts). Which one is not asserted.
    expect(await statusOf(g!.f, "longer")).toMatchObject({ state: "stopped", desired: "stopped" });
  });

  it.each(["gateway", "worker"] as const)("its server killed mid-stream (%s): the stream ends with an error event saying the server exited and how, not only that it broke", async (via) => {
    const { client } = await setup(via);
    const stream = longStream(client);
    await stream.firstChunk;
    const { pid } = await statusOf(g!.f, "longer");
    process.kill(pid!, "SIGKILL");

    const ended = await stream.ended;
    expect(ended.error, `the stream ended with an error event (it ended with ${String(ended.error)})`).toBeInstanceOf(OpenAI.APIError);
    expect((ended.error as InstanceType<typeof OpenAI.APIError>).message).toMatch(/^model "longer": its server exited \(crashed: killed by SIGKILL\); the request was ended with it; sent again, it is told when the model restarts \(503, Retry-After\) and answered once it runs, or told why not$/);
    expect(ended.chunks).toBeGreaterThanOrEqual(3);
  });

  it("stopped on its host mid-stream (stop-metal-servers, another agent): the stream ends with an error event saying so, not only that it broke", async () => {
    const { client } = await setup("gateway");
    const stream = longStream(client);
    await stream.firstChunk;
    // The host's own CLI: a second agent on the same state folder stops every server (stop-metal-servers).
    const cli = createHostAgent(agentOptions(g!.f.dirs, g!.f.bin));
    try {
      await cli.ready;
      await cli.call("stopAll", {});
    } finally {
      cli.close();
    }

    const ended = await stream.ended;
    expect(ended.error, `the stream ended with an error event (it ended with ${String(ended.error)})`).toBeInstanceOf(OpenAI.APIError);
    expect((ended.error as InstanceType<typeof OpenAI.APIError>).message).toMatch(/^model "longer" is stopped on its host, outside this app \(stopped on the host by another agent \(pid \d+, e\.g\. stop-metal-servers\)\); left stopped until it is started again: the request was ended with its server; sent again/);
    expect(await statusOf(g!.f, "longer")).toMatchObject({ state: "stopped", cause: "host-stop" });
  });

  it("killed, with a client asking every 5 ms until it answers again: never told the model failed for good (503 model_failed, do not retry) while its restart is on the way, nor 502", async () => {
    const { client } = await setup("gateway", { restartPolicy: { baseDelayMs: 300, maxDelayMs: 300 } });
    const { pid } = await statusOf(g!.f, "longer");
    process.kill(pid!, "SIGKILL");
    const seen = new Map<string, number>();
    const until = Date.now() + 30_000;
    for (;;) {
      const o = await outcome(client.chat.completions.create(chat("longer")));
      const key = o.status === 200 ? "200" : `${o.status} ${o.code}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      if (o.status === 200 && (await statusOf(g!.f, "longer")).pid !== pid) break;
      if (Date.now() > until) throw new Error(`no answer from the restarted server within 30 s; seen: ${JSON.stringify([...seen])}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    // Between the restart's due time and its start (tens of ms), the model reads exited with no restart planned:
    // a trial was told 503 model_failed there (3 crashes of 3).
    expect([...seen.keys()].filter((k) => k.includes("model_failed")), JSON.stringify([...seen])).toEqual([]);
    // Nor 502 "nothing listens" from the port in the ms after the kill, before the crash's record: the request was
    // not sent, and waits for the fleet's word (a trial saw the 502).
    expect([...seen.keys()].filter((k) => k.startsWith("502")), JSON.stringify([...seen])).toEqual([]);
  });

  it("killed with auto-restart off, which is then turned on: nothing restarts it, and a request is told so at once (503 model_failed), not held until the readiness deadline (135 s) for 503 model_not_ready", async () => {
    const { client } = await setup("gateway");
    await g!.f.t.db.runtimeSettings.update({ where: { id: 1 }, data: { autoRestart: false } });
    const { pid } = await statusOf(g!.f, "longer");
    process.kill(pid!, "SIGKILL");
    await waitFor("the crash to be recorded with no restart", async () => (await statusOf(g!.f, "longer")).state === "exited", 10_000, 20);
    await g!.f.t.db.runtimeSettings.update({ where: { id: 1 }, data: { autoRestart: true } });
    // The gateway's registry as the app's settings now say (a full read: the age check makes one within 1 s).
    await g!.adapter.models({ fresh: true });
    // Past the wait for a restart's start: the model's state was written when the crash was.
    await new Promise((r) => setTimeout(r, RESTART_GAP_WAIT_MS));
    const t0 = Date.now();
    const o = await outcome(client.chat.completions.create(chat("longer"), { timeout: 20_000 }).catch((err: unknown) => Promise.reject(err instanceof OpenAI.APIConnectionTimeoutError ? new Error(`no answer within 20 s (${Date.now() - t0} ms): the request waits for a restart that never comes`) : err)));
    expect(o).toMatchObject({ status: 503, code: "model_failed", message: expect.stringContaining('model "longer" exited: killed by SIGKILL') });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(await statusOf(g!.f, "longer")).toMatchObject({ state: "exited" });
  }, 60_000);

  it("killed while answering one request with another queued: the first is told its server exited, the queued one what the model now is (503 model_restarting), not 502 from the ended server", async () => {
    // A backoff long enough that the model is still waiting for its restart when the queued request looks.
    const { client, model } = await setup("gateway", { restartPolicy: { baseDelayMs: 30_000, maxDelayMs: 30_000 } });
    const busy = outcome(client.chat.completions.create(chat("longer", { max_tokens: 40_000, ignore_eos: true })));
    await waitFor("the first request to take the slot", () => anySlotBusy(model), 10_000, 20);
    const queued = outcome(client.chat.completions.create(chat("longer")));
    await waitFor("the second request to queue", async () => g!.adapter.usage(model.id).inFlight === 2, 5000, 20);
    const { pid } = await statusOf(g!.f, "longer");
    process.kill(pid!, "SIGKILL");

    expect(await busy).toMatchObject({ status: 503, code: "model_server_exited", message: expect.stringContaining('model "longer": its server exited (crashed: killed by SIGKILL)') });
    expect(await queued).toMatchObject({ status: 503, code: "model_restarting", message: expect.stringContaining('model "longer" crashed and restarts in') });
  });

  it.each(["gateway", "worker"] as const)("restarted while answering one request with another queued (%s): the first is told to send it again (503, Retry-After), the queued one is answered by the new server", async (via) => {
    const { client, model } = await setup(via);
    const pidBefore = (await statusOf(g!.f, "longer")).pid;
    const busy = outcome(client.chat.completions.create(chat("longer", { max_tokens: 40_000, ignore_eos: true })));
    await waitFor("the first request to take the slot", () => anySlotBusy(model), 10_000, 20);
    const queued = client.chat.completions.create(chat("longer"));
    await waitFor("the second request to queue", async () => g!.adapter.usage(model.id).inFlight === 2, 5000, 20);

    const restarted = await g!.f.fleet.restart(model.id, { wait: true });
    expect(restarted.state).toBe("ready");
    expect(restarted.pid).not.toBe(pidBefore);

    expect(await busy).toMatchObject({ status: 503, code: "model_stopping", message: expect.stringContaining('model "longer" is stopping (stopped to restart)') });
    const answer = await queued;
    expect(answer.choices[0]!.message.content).toMatch(/^[a-z]+$/);
  });
});
