/**
 * The Activity page (production build, real llama-server, Chromium): the
 * event log newest first with model names and stop causes in words; a
 * model stopped by another client appears at the top without a reload;
 * "Load older" pages back with no event twice; the model page's link opens
 * the page filtered to that model.
 */
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApp, type AppServer } from "../../test/harness/app-server";
import { expectTestId, openPage, useBrowser } from "../harness/browser";
import { arrangeModels, markDocument, NARROW, stillSameDocument, WIDE, type ArrangedModel } from "./fleet-helpers";

const browser = useBrowser();

/** The rows the page shows, top to bottom. */
async function shownRows(page: Page): Promise<{ id: number; kind: string; text: string; cause: string | null }[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>('[data-testid="activity-row"]')].map((r) => ({
      id: Number(r.dataset.eventId),
      kind: r.dataset.kind ?? "",
      text: r.textContent ?? "",
      cause: r.querySelector<HTMLElement>('[data-testid="activity-cause"]')?.dataset.cause ?? null,
    })),
  );
}

describe("activity page (production build)", () => {
  let app: AppServer;
  let alpha: ArrangedModel;
  let beta: ArrangedModel;

  beforeAll(async () => {
    app = await startApp({ name: "dashboard-activity" });
    [alpha, beta] = (await arrangeModels(app, [
      { name: "act-alpha", enabled: true },
      { name: "act-beta", enabled: false },
    ])) as [ArrangedModel, ArrangedModel];
    const started = await app.trpc.mutation("servers.start", { id: alpha.id, wait: true });
    expect(started.error, JSON.stringify(started.error)).toBeUndefined();
  });
  afterAll(async () => {
    await app?.dispose();
  });

  it("lists the event log; events written before the live stream opened and after it both appear at the top, once, without a reload", async () => {
    const { page, screenshot, context } = await openPage(browser(), app, { name: "activity-live", viewport: WIDE });
    // Hold the page's event streams until the test lets them through: the events another client causes
    // meanwhile happen after the history was read and before the stream opened, where a gap would be.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route(
      (url) => url.pathname.endsWith("/servers.events"),
      async (route) => {
        await held;
        await route.continue();
      },
    );
    await page.goto("/");
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Activity" }).click();
    await page.waitForURL(/\/activity$/);
    await expectTestId(page, "activity-list");
    await expect.poll(async () => (await shownRows(page)).some((r) => r.kind === "state" && r.text.includes("act-alpha") && /ready/i.test(r.text)), { timeout: 15_000 }).toBe(true);
    const before = await shownRows(page);
    expect(before.map((r) => r.id)).toEqual([...before.map((r) => r.id)].sort((a, b) => b - a));
    expect(before.some((r) => r.text.includes("model act-beta added"))).toBe(true);
    const readyRow = page.locator('[data-testid="activity-row"][data-kind="state"]', { hasText: "act-alpha: ready" }).first();
    expect(await readyRow.getByTestId("activity-model-link").getAttribute("href")).toBe(`/models/${alpha.id}`);
    await markDocument(page);

    // Another client stops the model while the stream is held; once it opens, the stop is at the top with its cause in words.
    const stopped = await app.trpc.mutation("servers.stop", { id: alpha.id });
    expect(stopped.error, JSON.stringify(stopped.error)).toBeUndefined();
    await expect.poll(() => app.db().event.count({ where: { modelId: alpha.id, kind: "state", state: "stopped" } }), { timeout: 20_000 }).toBe(1);
    release();
    await expect.poll(async () => (await shownRows(page))[0], { timeout: 20_000 }).toMatchObject({ kind: "state", cause: "requested" });
    const top = (await shownRows(page))[0]!;
    expect(top.text).toContain("act-alpha");
    expect(top.text).toContain("stopped on request");
    await expect.poll(() => page.getByTestId("activity-live").getAttribute("data-state"), { timeout: 15_000 }).toBe("live");

    // With the stream open: an edit arrives live.
    const enabled = await app.trpc.mutation("models.setEnabled", { id: beta.id, enabled: true });
    expect(enabled.error, JSON.stringify(enabled.error)).toBeUndefined();
    await expect.poll(async () => (await shownRows(page))[0]?.text ?? "", { timeout: 20_000 }).toContain("model act-beta enabled");

    // Exactly the events the app wrote since the page loaded, newest first, each once, above what it loaded.
    const after = await shownRows(page);
    const fresh = after.filter((r) => r.id > before[0]!.id);
    const written = await app.db().event.findMany({ where: { id: { gt: before[0]!.id } }, orderBy: { id: "desc" }, select: { id: true } });
    expect(fresh.map((r) => r.id)).toEqual(written.map((e) => e.id));
    expect(after.slice(fresh.length).map((r) => r.id)).toEqual(before.map((r) => r.id));
    expect(await stillSameDocument(page)).toBe(true);
    await screenshot("stopped");
    await context.close();
  });

  it("Load older pages back through the whole log, no event twice; the model page links to its own activity", async () => {
    // More than a page of events: each enable and disable of act-beta is one.
    for (let i = 0; i < 110; i++) {
      const r = await app.trpc.mutation("models.setEnabled", { id: beta.id, enabled: i % 2 === 1 });
      expect(r.error, JSON.stringify(r.error)).toBeUndefined();
    }
    const total = await app.db().event.count();
    expect(total).toBeGreaterThan(100);
    const { page, screenshot, context } = await openPage(browser(), app, { name: "activity-older", viewport: WIDE });
    await page.goto("/activity");
    await expect.poll(async () => (await shownRows(page)).length, { timeout: 15_000 }).toBe(100);
    await page.getByTestId("activity-older").click();
    await expectTestId(page, "activity-end");
    const all = await shownRows(page);
    expect(all.length).toBe(total);
    expect(new Set(all.map((r) => r.id)).size).toBe(total);
    expect(all.map((r) => r.id)).toEqual([...all.map((r) => r.id)].sort((a, b) => b - a));

    await page.goto(`/models/${alpha.id}`);
    await (await expectTestId(page, "model-activity")).click();
    await page.waitForURL((url) => url.pathname === "/activity" && url.searchParams.get("model") === alpha.id);
    await expect.poll(async () => (await shownRows(page)).length, { timeout: 15_000 }).toBeGreaterThan(0);
    const mine = await shownRows(page);
    expect(mine.every((r) => r.text.includes("act-alpha"))).toBe(true);
    expect(await page.getByTestId("activity-model").inputValue()).toBe(alpha.id);
    await screenshot("one-model");
    await context.close();

    // At 390 px each event is a card: nothing scrolls sideways.
    const narrow = await openPage(browser(), app, { name: "activity-390", viewport: NARROW });
    await narrow.page.goto("/activity?kind=state");
    await expect.poll(async () => (await shownRows(narrow.page)).length, { timeout: 15_000 }).toBeGreaterThan(0);
    expect((await shownRows(narrow.page)).every((r) => r.kind === "state")).toBe(true);
    expect(await narrow.page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await narrow.screenshot("390");
    await narrow.context.close();
  });
});
