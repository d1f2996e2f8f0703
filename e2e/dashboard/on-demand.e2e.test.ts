/**
 * The fleet page with an on-demand model: idle (not "stopped") before any
 * request; started by a request to the gateway on the app's port, live;
 * the row tells it is on demand, when it was last used and when it unloads;
 * after its idle time it is idle again. Screenshots at each step. And an
 * `always` model that is ready when the page opens: a request that comes
 * later shows in its row while it runs (live events say state changes, not
 * requests: the row did not show it until a reload).
 */
import path from "node:path";
import OpenAI from "openai";
import type { ChatCompletionCreateParamsNonStreaming, ChatCompletionCreateParamsStreaming } from "openai/resources/chat/completions";
import { writeTinyModel } from "../../host-agent/src/gguf/tiny-model";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApp, type AppServer } from "../../test/harness/app-server";
import { expectTestId, openPage, useBrowser } from "../harness/browser";
import { arrangeModels, row, watchFleet, waitForRowState, stateLog, WIDE, type ArrangedModel } from "./fleet-helpers";

const browser = useBrowser();

describe("fleet page: an on-demand model (production build, real llama-server)", () => {
  let app: AppServer;
  let model: ArrangedModel;
  let steady: ArrangedModel;

  beforeAll(async () => {
    app = await startApp({ name: "dashboard-on-demand" });
    [model, steady] = (await arrangeModels(app, [{ name: "lazy", enabled: true }, { name: "steady", enabled: true }])) as [ArrangedModel, ArrangedModel];
    // Room for a generation of many seconds: a file trained for 65536 tokens, and the context to match.
    await writeTinyModel(path.join(app.dirs.modelRoot, "steady.gguf"), { contextLength: 65_536 });
    const s = await app.trpc.mutation("models.update", { id: steady.id, ctxSize: 65_536 });
    expect(s.error, JSON.stringify(s.error)).toBeUndefined();
    const r = await app.trpc.mutation("models.update", { id: model.id, loadPolicy: "on-demand", idleTimeoutMs: 4000 });
    expect(r.error, JSON.stringify(r.error)).toBeUndefined();
  });
  afterAll(async () => {
    await app?.dispose();
  });

  it("idle on demand → ready after a request (with last use and the countdown) → idle again after its idle time", async () => {
    const { page, screenshot } = await openPage(browser(), app, { name: "fleet-on-demand", viewport: WIDE });
    await watchFleet(page);
    await page.goto("/");
    await expectTestId(page, "model-list");
    const badge = row(page, "lazy").getByTestId("state-badge");
    await expect.poll(() => badge.getAttribute("data-state")).toBe("idle");
    expect(await badge.textContent()).toContain("Idle");
    // The line under it says why it is idle rather than stopped.
    await expect.poll(() => row(page, "lazy").getByTestId("gateway-usage").textContent()).toBe("on demand");
    await screenshot("idle");

    const client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: "loopback", maxRetries: 0 });
    const answer = await client.chat.completions.create({ model: "lazy", messages: [{ role: "user", content: "hi" }], max_tokens: 4, grammar: "root ::= [a-z]+" } as unknown as ChatCompletionCreateParamsNonStreaming);
    expect(answer.choices[0]?.message.content).toMatch(/^[a-z]+$/);

    await waitForRowState(page, "lazy", "ready", 30_000);
    const usage = row(page, "lazy").getByTestId("gateway-usage");
    await expect.poll(() => usage.textContent()).toMatch(/on demand · used \d+ s ago · unloads in \d+ s/);
    // The line stays inside its column (it ran over the Activity column's figures at 1400 px).
    expect(await usage.evaluate((el) => el.scrollWidth <= el.clientWidth)).toBe(true);
    await screenshot("ready");

    await expect.poll(() => badge.getAttribute("data-state"), { timeout: 20_000 }).toBe("idle");
    await screenshot("unloaded");
    expect((await stateLog(page)).lazy).toEqual(expect.arrayContaining(["idle", "ready"]));
  });

  it("an 'always' model ready when the page opened: a request that comes later shows in its row while it runs", async () => {
    const started = await app.trpc.mutation<{ state: string; error: string | null }>("servers.start", { id: steady.id });
    expect(started.error, JSON.stringify(started.error)).toBeUndefined();
    const { page, screenshot } = await openPage(browser(), app, { name: "fleet-in-flight", viewport: WIDE });
    await page.goto("/");
    await waitForRowState(page, "steady", "ready", 30_000);
    const usage = row(page, "steady").getByTestId("gateway-usage");
    expect((await usage.count()) === 0 || !/in flight/.test((await usage.textContent()) ?? "")).toBe(true);

    const client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: "loopback", maxRetries: 0 });
    const abort = new AbortController();
    const stream = await client.chat.completions.create({ model: "steady", messages: [{ role: "user", content: "hi" }], max_tokens: 40_000, ignore_eos: true, grammar: "root ::= [a-z]+", stream: true } as unknown as ChatCompletionCreateParamsStreaming, { signal: abort.signal });
    const reading = (async () => {
      try {
        for await (const _ of stream);
      } catch {
        // aborted below
      }
    })();
    try {
      await expect.poll(() => usage.textContent(), { timeout: 15_000 }).toMatch(/1 in flight/);
      await screenshot("in-flight");
    } finally {
      abort.abort();
      await reading;
    }
  });
});
