/**
 * Gateway API keys from the dashboard (Settings → Gateway API keys) in a real
 * Chromium, used by the official `openai` client on the app's /v1: a key
 * limited to one model is shown once, works for that model and is 403 for
 * another; deleted in the page (after a confirmation, which Cancel leaves
 * unchanged), it is refused on the very next request (the
 * gateway's worker thread and the main thread both had it cached); the
 * event log records both changes.
 */
import OpenAI from "openai";
import type { ChatCompletionCreateParamsNonStreaming } from "openai/resources/chat/completions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../host-agent/test/harness/ports";
import { tinyModel } from "../../host-agent/test/harness/tiny-model";
import { startApp, type AppServer } from "../../test/harness/app-server";
import { expectTestId, openPage, useBrowser } from "../harness/browser";
import { WIDE } from "./fleet-helpers";

const browser = useBrowser();

function chat(model: string): ChatCompletionCreateParamsNonStreaming {
  return { model, messages: [{ role: "user", content: "hi" }], max_tokens: 4, grammar: "root ::= [a-z]+" } as unknown as ChatCompletionCreateParamsNonStreaming;
}

async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (err) {
    if (err instanceof OpenAI.APIError && err.status !== undefined) return err.status;
    throw err;
  }
}

describe("gateway API keys from the dashboard (production build, real Chromium, openai client)", () => {
  let app: AppServer;

  beforeAll(async () => {
    app = await startApp({ name: "gateway-keys" });
    for (const name of ["tiny", "other"]) {
      const file = await tinyModel(app.dirs.modelRoot, `${name}.gguf`);
      const created = await app.trpc.mutation("models.create", { name, filePath: file, port: await freePort(), enabled: true, ctxSize: 256, threads: 1 });
      expect(created.error, JSON.stringify(created.error)).toBeUndefined();
    }
    const started = await app.json<{ ok: boolean }>("/api/models/servers/start-all", { method: "POST" });
    expect(started.body.ok, JSON.stringify(started.body)).toBe(true);
  });
  afterAll(async () => {
    await app?.dispose();
  });

  it("a key made in Settings works for its model, is 403 for another, and is refused on the next request after Delete", async () => {
    const { page, screenshot } = await openPage(browser(), app, { name: "gateway-keys", viewport: WIDE });
    await page.goto("/settings");
    const panel = await expectTestId(page, "gateway-keys");
    await panel.getByLabel("Name").fill("ci");
    await panel.getByLabel("Models").fill("tiny");
    await panel.getByRole("button", { name: "Create key" }).click();
    const shown = await expectTestId(page, "new-key");
    const key = (await shown.locator("code").textContent())?.trim() ?? "";
    expect(key).toMatch(/^sk-synapse-/);
    await screenshot("created");

    const keyed = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: key, maxRetries: 0 });
    // Twice: the worker's cache and the main thread's hold the key after the first.
    for (let i = 0; i < 2; i++) expect((await keyed.chat.completions.create(chat("tiny"))).choices[0]?.message.content).toMatch(/^[a-z]+$/);
    expect(await statusOf(keyed.chat.completions.create(chat("other")))).toBe(403);

    // Delete asks first; Cancel keeps the key.
    await panel.getByRole("button", { name: "Delete key ci…" }).click();
    await panel.getByRole("button", { name: "Cancel" }).click();
    expect(await statusOf(keyed.chat.completions.create(chat("tiny")))).toBe(200);
    await panel.getByRole("button", { name: "Delete key ci…" }).click();
    await screenshot("confirm-delete");
    const deleted = page.waitForResponse((r) => r.url().includes("gatewayKeys.delete") && r.ok(), { timeout: 15_000 });
    await panel.getByRole("button", { name: "Yes, delete ci" }).click();
    await deleted;
    // The very next request, with no wait: refused.
    expect(await statusOf(keyed.chat.completions.create(chat("tiny")))).toBe(401);
    await expect.poll(async () => panel.getByRole("button", { name: "Delete key ci…" }).count()).toBe(0);

    const logged = await app.db().event.findMany({ where: { kind: "action" }, orderBy: { id: "asc" } });
    const prefix = key.slice(0, "sk-synapse-".length + 6);
    expect(logged.map((e) => e.message).filter((m) => m.startsWith("gateway key"))).toEqual([`gateway key "ci" (${prefix}…) created, for models tiny`, `gateway key "ci" (${prefix}…) deleted`]);
  });
});
