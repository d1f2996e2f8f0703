/**
 * Memory on the dashboard (issue 16), in Chromium against the production build: the model page's
 * estimate follows the form's unsaved values (context size, parallel slots, the K cache type among the
 * extra flags) and shows what the API estimates for exactly those values, saving nothing; a value that does
 * not parse marks the estimate as the last valid values' and names the field; values the API refuses are
 * named as the form names them (a flag row by its flag, also after a row above it is removed), in the API's
 * words but without asking it (no HTTP 400 in the console); the fleet page
 * draws a memory bar for the host, whose labels name six models in full without one over another.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApp, type AppServer } from "../../test/harness/app-server";
import { expectTestId, openPage, useBrowser } from "../harness/browser";
import { arrangeModels, localHostId, NARROW, overlapping, textBoxes, WIDE, type ArrangedModel } from "./fleet-helpers";

const browser = useBrowser();

interface Breakdown {
  estimate: { weightsBytes: number; kvCacheBytes: number; computeBytes: number; promptCacheBytes: number; totalBytes: number } | null;
  unavailable: string | null;
}

describe("memory estimate on the model page (production build)", () => {
  let app: AppServer;
  let model: ArrangedModel;

  beforeAll(async () => {
    app = await startApp({ name: "dashboard-memory" });
    const [arranged] = await arrangeModels(app, [{ name: "echo", enabled: true }]);
    model = arranged!;
  });
  afterAll(async () => {
    await app?.dispose();
  });

  /** What the API estimates for these unsaved values. */
  async function apiEstimate(values: Record<string, unknown>): Promise<NonNullable<Breakdown["estimate"]>> {
    const r = await app.trpc.query<Breakdown>("models.estimate", { id: model.id, ...values });
    expect(r.error, JSON.stringify(r.error)).toBeUndefined();
    expect(r.data!.unavailable).toBeNull();
    return r.data!.estimate!;
  }

  it("the breakdown follows context size, parallel slots and cache type as they are typed, before saving", async () => {
    // The model's shape was read when it was saved: the estimate has something to work from.
    expect((await app.db().model.findUniqueOrThrow({ where: { id: model.id } })).shape).toBeTruthy();
    const { page, screenshot } = await openPage(browser(), app, { name: "memory-estimate", viewport: WIDE });
    await page.goto(`/models/${model.id}`);
    const form = await expectTestId(page, "model-form");
    await expectTestId(page, "memory-estimate");
    const bytes = async (part: string) => Number(await page.getByTestId(`estimate-${part}`).getAttribute("data-bytes"));
    const settled = async () => (await page.getByTestId("memory-estimate").getAttribute("data-pending")) === "false";

    // The saved settings (the global context 256).
    const saved = await apiEstimate({});
    await expect.poll(() => bytes("kv-cache")).toBe(saved.kvCacheBytes);
    await expect.poll(() => bytes("total")).toBe(saved.totalBytes);

    // A longer context: the KV cache grows with it, as the API estimates for 4096.
    await form.getByLabel("Context size").fill("4096");
    const at4096 = await apiEstimate({ ctxSize: 4096 });
    expect(at4096.kvCacheBytes).toBeGreaterThan(saved.kvCacheBytes * 8);
    await expect.poll(() => bytes("kv-cache")).toBe(at4096.kvCacheBytes);
    await expect.poll(() => bytes("total")).toBe(at4096.totalBytes);
    await expect.poll(settled).toBe(true);
    await screenshot("ctx-4096");

    // Text that is not a number: the estimate of the last valid values (4096) stays, dimmed, under a note
    // that names the field; nothing claims to be the estimate of "abc".
    const box = page.getByTestId("memory-estimate");
    await form.getByLabel("Context size").fill("abc");
    await expect.poll(() => box.getAttribute("data-stale")).toBe("true");
    await expect.poll(async () => (await page.getByTestId("estimate-stale").textContent()) ?? "").toBe("Context size must be a whole number (or empty for the default). The estimate below is for the last valid values.");
    expect(await bytes("kv-cache")).toBe(at4096.kvCacheBytes);
    await screenshot("ctx-invalid");
    await form.getByLabel("Context size").fill("4096");
    await expect.poll(() => box.getAttribute("data-stale")).toBe("false");
    expect(await page.getByTestId("estimate-stale").count()).toBe(0);

    // Four parallel slots share that context: the page shows what the API says for both values together.
    await form.getByLabel("Parallel slots").fill("4");
    const slots4 = await apiEstimate({ ctxSize: 4096, parallel: 4 });
    await expect.poll(() => bytes("compute")).toBe(slots4.computeBytes);
    await expect.poll(() => bytes("total")).toBe(slots4.totalBytes);

    // A q8_0 K cache (an extra flag): the KV cache shrinks.
    await page.getByRole("button", { name: "Add flag" }).click();
    const flag = page.getByLabel("Flag 1", { exact: true });
    await flag.selectOption("--cache-type-k");
    await page.getByLabel("Value of flag 1").fill("q8_0");
    const q8 = await apiEstimate({ ctxSize: 4096, parallel: 4, extraFlags: [{ flag: "--cache-type-k", value: "q8_0" }] });
    expect(q8.kvCacheBytes).toBeLessThan(slots4.kvCacheBytes);
    await expect.poll(() => bytes("kv-cache")).toBe(q8.kvCacheBytes);
    await expect.poll(() => bytes("total")).toBe(q8.totalBytes);
    await expect.poll(settled).toBe(true);
    await screenshot("q8_0");

    // A prompt cache capped at 512 MiB: the total with a full prompt cache follows it; what a plan charges
    // (weights, KV cache, compute) does not change.
    await form.getByLabel("Prompt cache (MiB)").fill("512");
    const capped = await apiEstimate({ ctxSize: 4096, parallel: 4, cacheRamMiB: 512, extraFlags: [{ flag: "--cache-type-k", value: "q8_0" }] });
    expect(capped.promptCacheBytes).toBe(512 * 1024 * 1024);
    await expect.poll(() => bytes("prompt-cache")).toBe(capped.promptCacheBytes);
    await expect.poll(() => bytes("total")).toBe(capped.totalBytes);
    await expect.poll(() => bytes("charged")).toBe(q8.totalBytes - q8.promptCacheBytes);

    // Nothing was saved.
    const row = await app.db().model.findUniqueOrThrow({ where: { id: model.id } });
    expect([row.ctxSize, row.parallel, row.extraFlags, row.cacheRamMiB]).toEqual([null, null, "[]", null]);

    // The fleet page draws the host's memory bar.
    await page.goto("/");
    const bar = await expectTestId(page, "memory-bar");
    await expect.poll(() => bar.getAttribute("data-host-name")).toBeTruthy();
    await expect.poll(async () => (await page.getByTestId("memory-figures").textContent()) ?? "").toMatch(/estimated for running servers, of \d+\.\d GiB/);
    await screenshot("fleet-memory-bar");
  });

  it("values the API refuses are named in its words without asking it: no failed request, no console error", async () => {
    // The API refuses these values, naming a flag row by its index in the list it was sent and the
    // context size by its bounds: the words the panel must show without sending them.
    const asked = await app.trpc.query("models.estimate", { id: model.id, extraFlags: [{ flag: "--temp", value: "0.5" }, { flag: "--seed", value: "abc" }] });
    expect(asked.error?.data?.issues).toEqual([{ path: "extraFlags.1.value", message: '--seed does not take "abc"; it takes a whole number from -2147483648 to 2147483647' }]);
    const tooLong = await app.trpc.query("models.estimate", { id: model.id, ctxSize: 2_000_000 });
    const tooLongIssues = (tooLong.error?.data?.issues ?? []) as { path: string; message: string }[];
    expect(tooLongIssues.map((i) => i.path)).toEqual(["ctxSize"]);

    // No allowConsole: a refused request (Chromium logs each HTTP 400 as a console error) fails the test.
    const { page, screenshot, problems } = await openPage(browser(), app, { name: "memory-estimate-refused", viewport: WIDE });
    const failed: string[] = [];
    page.on("response", (r) => {
      if (r.status() >= 400) failed.push(`${r.status()} ${r.request().method()} ${r.url()}`);
    });
    await page.goto(`/models/${model.id}`);
    const form = await expectTestId(page, "model-form");
    const box = await expectTestId(page, "memory-estimate");
    await expect.poll(() => page.getByTestId("estimate-total").count()).toBe(1);
    const settled = async () => (await box.getAttribute("data-pending")) === "false";

    // The refusal as a user finds it: by its opening words.
    const refused = box.getByText(/^Cannot estimate these values/);
    const refusal = async () => ((await refused.count()) > 0 ? await refused.textContent() : null);

    // A context size past the bound: refused in the API's words, and never asked.
    await form.getByLabel("Context size").fill("2000000");
    await expect.poll(refusal).toBe(`Cannot estimate these values: Context size: ${tooLongIssues[0]!.message}`);
    await expect.poll(settled).toBe(true);
    expect(failed).toEqual([]);
    expect([...problems]).toEqual([]);
    await form.getByLabel("Context size").fill("");
    await expect.poll(refusal).toBeNull();
    await expect.poll(() => page.getByTestId("estimate-total").count()).toBe(1);

    const message = 'Cannot estimate these values: Extra flag --seed: does not take "abc"; it takes a whole number from -2147483648 to 2147483647';
    // --temp 0.5, then --seed abc below it.
    for (const [i, flag, value] of [[1, "--temp", "0.5"], [2, "--seed", "abc"]] as const) {
      await page.getByRole("button", { name: "Add flag" }).click();
      await page.getByLabel(`Flag ${i}`, { exact: true }).selectOption(flag);
      await page.getByLabel(`Value of flag ${i}`).fill(value);
    }
    await expect.poll(refusal).toBe(message);
    await expect.poll(settled).toBe(true);
    expect(failed).toEqual([]);
    expect([...problems]).toEqual([]);
    await screenshot("seed-refused");

    // Without the --temp row the --seed row is the first: the panel still names --seed.
    await page.getByRole("button", { name: "Remove --temp", exact: true }).click();
    await expect.poll(() => page.getByRole("button", { name: "Remove --temp", exact: true }).count()).toBe(0);
    await expect.poll(settled).toBe(true);
    expect(await refusal()).toBe(message);

    // A whole number: the estimate is back, for the values as they are.
    await page.getByLabel("Value of flag 1").fill("7");
    const fixed = await apiEstimate({ extraFlags: [{ flag: "--seed", value: "7" }] });
    await expect.poll(() => page.getByTestId("estimate-total").getAttribute("data-bytes")).toBe(String(fixed.totalBytes));
    expect(await refusal()).toBeNull();
    expect(failed).toEqual([]);
    expect((await app.db().model.findUniqueOrThrow({ where: { id: model.id } })).extraFlags).toBe("[]");
  });

  it("the fleet's memory bar names each of six models in full, no name over another, at 1280 and 390 px", async () => {
    // Names of different lengths and sizes (context sizes) that differ, one running, the rest what start all would add.
    const specs = [
      { name: "DeepSeek-R1-Distill-Qwen-14B-Q5_K_M", ctxSize: 256 },
      { name: "phi", ctxSize: 1024 },
      { name: "Meta-Llama-3.1-8B-Instruct-Q4_K_M", ctxSize: 256 },
      { name: "gemma-2-2b-it-Q8_0", ctxSize: 2048 },
      { name: "qwen2.5-0.5b", ctxSize: 512 },
    ];
    const arranged = await arrangeModels(app, specs.map((s) => ({ name: s.name, enabled: true })));
    for (const [i, m] of arranged.entries()) {
      const r = await app.trpc.mutation("models.update", { id: m.id, ctxSize: specs[i]!.ctxSize });
      expect(r.error, JSON.stringify(r.error)).toBeUndefined();
    }
    // A budget these tiny models fill a good part of (about 1-4 MiB each), so the segments have real widths.
    const budget = await app.trpc.mutation("hosts.update", { id: await localHostId(app), memoryBudgetMiB: 32 });
    expect(budget.error, JSON.stringify(budget.error)).toBeUndefined();
    const started = await app.trpc.mutation("servers.start", { id: arranged[2]!.id, wait: true });
    expect(started.error, JSON.stringify(started.error)).toBeUndefined();
    const names = [model.name, ...specs.map((s) => s.name)];

    for (const viewport of [WIDE, NARROW]) {
      const { page, screenshot, context } = await openPage(browser(), app, { name: `fleet-memory-labels-${viewport.width}`, viewport });
      await page.goto("/");
      await expectTestId(page, "memory-bar");
      await expect.poll(() => page.getByTestId("memory-segment").count(), { timeout: 15_000 }).toBe(names.length);
      const labels = await textBoxes(page, '[data-testid="memory-bar"]', names);
      for (const l of labels) expect(l, `${viewport.width} px: ${JSON.stringify(l)}`).toMatchObject({ found: true, clippedBy: null });
      expect(overlapping(labels), `${viewport.width} px`).toEqual([]);
      await screenshot();
      await context.close();
    }
    await app.trpc.mutation("servers.stopAll");
  });
});
