/**
 * The fleet page with real llama-servers: START ALL ENABLED brings every
 * enabled row to "ready" live (no reload), STOP ALL brings them back to
 * "stopped", each with its stop's cause under its state (not under LAST
 * ERROR), and greyed out with nothing to stop says why; a server killed with SIGKILL shows the crash, then the
 * recovery; a port saved while a server runs shows as the running port over "→ NEXT", inside the PORT cell; a
 * long model name reads whole at 1280 px. Screenshots at 1280 and 390 px.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../host-agent/test/harness/ports";
import { startApp, type AppServer } from "../../test/harness/app-server";
import { expectTestId, openPage, useBrowser } from "../harness/browser";
import { arrangeModels, columnCell, markDocument, NARROW, row, rowGeometry, stateLog, status, stillSameDocument, textBoxes, waitForRowState, watchFleet, WIDE, type ArrangedModel } from "./fleet-helpers";

const browser = useBrowser();

describe("fleet page (production build, real llama-server)", () => {
  let app: AppServer;
  let models: ArrangedModel[];

  beforeAll(async () => {
    app = await startApp({ name: "dashboard-fleet" });
    models = await arrangeModels(app, [
      { name: "alpha", enabled: true },
      { name: "bravo", enabled: true },
      { name: "charlie", enabled: true },
      { name: "delta", enabled: false },
    ]);
  });
  afterAll(async () => {
    await app?.dispose();
  });

  it("START ALL ENABLED: every enabled row goes queued → ready without a reload; STOP ALL: stopped", async () => {
    const { page, screenshot } = await openPage(browser(), app, { name: "fleet-start-all", viewport: WIDE });
    await watchFleet(page);
    await page.goto("/");
    await expectTestId(page, "model-list");
    await waitForRowState(page, "alpha", "stopped", 15_000);
    // Nothing runs: STOP ALL is greyed out and says why, to the pointer (title) and to a screen reader (its description).
    const stopAll = page.getByTestId("stop-all");
    expect(await stopAll.isDisabled()).toBe(true);
    expect(await stopAll.getAttribute("title")).toBe("Nothing is running: no server to stop");
    const reasonId = await stopAll.getAttribute("aria-describedby");
    expect(reasonId, "STOP ALL points at its reason").toBeTruthy();
    expect(await page.locator(`[id="${reasonId}"]`).textContent()).toBe("Nothing is running: no server to stop");
    await markDocument(page);
    await screenshot("1280-stopped");
    const stoppedGeometry = await rowGeometry(page);

    await page.getByTestId("start-all").click();
    for (const m of models.filter((m) => m.enabled)) await waitForRowState(page, m.name, "ready", 90_000);
    expect(await row(page, "delta").getAttribute("data-state")).toBe("stopped");
    expect(await row(page, "delta").getAttribute("data-desired")).toBe("stopped");

    const log = await stateLog(page);
    for (const m of models.filter((m) => m.enabled)) {
      const seen = log[m.name] ?? [];
      // Each showed a progress state (queued right after the click, loading while /health said 503) before ready.
      expect(seen.slice(-1), `${m.name}: ${seen.join(" → ")}`).toEqual(["ready"]);
      expect(seen.some((s) => s === "queued" || s === "starting"), `${m.name}: ${seen.join(" → ")}`).toBe(true);
      expect(seen, `${m.name}: ${seen.join(" → ")}`).not.toContain("failed");
    }
    expect(log.delta ?? []).not.toContain("ready");
    await expect.poll(() => page.getByTestId("fleet-summary").textContent()).toMatch(/all 3 ready/);
    expect(await stillSameDocument(page)).toBe(true);

    // The API agrees, and the row shows what it says.
    const rows = await status(app);
    for (const m of models.filter((m) => m.enabled)) {
      const r = rows.find((x) => x.name === m.name)!;
      expect(r).toMatchObject({ state: "ready", desired: "running" });
      expect(r.pid).toBeGreaterThan(0);
    }
    await screenshot("1280-ready");
    // No layout jumps: every row, badge and button group is where it was while stopped.
    expect(await rowGeometry(page)).toEqual(stoppedGeometry);

    const narrow = await openPage(browser(), app, { name: "fleet-390-ready", viewport: NARROW });
    await narrow.page.goto("/");
    await waitForRowState(narrow.page, "alpha", "ready", 15_000);
    expect(await narrow.page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    await narrow.screenshot();
    await narrow.context.close();

    // Servers run: STOP ALL can be pressed, and no longer says there is nothing to stop.
    expect(await stopAll.isDisabled()).toBe(false);
    expect(await stopAll.getAttribute("title")).toBeNull();
    await page.getByTestId("stop-all").click();
    for (const m of models) await waitForRowState(page, m.name, "stopped", 60_000);
    expect(await stillSameDocument(page)).toBe(true);
    const after = await status(app);
    expect(after.every((r) => r.state === "stopped" && r.pid === null && r.desired === "stopped"), JSON.stringify(after)).toBe(true);
    await expect.poll(() => page.getByTestId("fleet-summary").textContent()).toMatch(/all 3 stopped/);
    // Each says why it is not running: the API's cause, in the row's words, under its state; a stop on
    // request is no error: the LAST ERROR column stays empty.
    expect(after.filter((r) => models.find((m) => m.name === r.name)?.enabled).map((r) => r.cause)).toEqual(["requested", "requested", "requested"]);
    for (const m of models.filter((m) => m.enabled)) {
      const state = await columnCell(page, m.name, "State");
      await expect.poll(() => state.textContent(), { timeout: 10_000, message: `${m.name}: the State cell` }).toContain("stopped on request");
      expect(await state.getByTestId("stop-cause").textContent()).toBe("stopped on request");
      expect((await (await columnCell(page, m.name, "Last error")).textContent())?.trim(), `${m.name}: the Last error cell`).toBe("");
    }
    await screenshot("1280-stopped-on-request");
  });

  it("kill -9 of a server: its row shows the crash, then the recovery, live", async () => {
    const target = models[0]!;
    const started = await app.trpc.mutation("servers.start", { id: target.id, wait: true });
    expect(started.error, JSON.stringify(started.error)).toBeUndefined();

    const { page, screenshot } = await openPage(browser(), app, { name: "fleet-crash", viewport: WIDE });
    await watchFleet(page);
    await page.goto("/");
    await waitForRowState(page, target.name, "ready", 30_000);
    await markDocument(page);
    const before = (await status(app)).find((r) => r.modelId === target.id)!;
    expect(before.pid).toBeGreaterThan(0);

    process.kill(before.pid!, "SIGKILL");
    await waitForRowState(page, target.name, "exited", 15_000);
    await screenshot("crashed");
    // A crash is an error: under LAST ERROR.
    expect((await (await columnCell(page, target.name, "Last error")).textContent())?.trim()).not.toBe("");
    // Restarted after the backoff (about 1 s).
    await waitForRowState(page, target.name, "ready", 60_000);
    await expect.poll(async () => (await row(page, target.name).getByTestId("restarts").textContent())?.trim(), { timeout: 10_000 }).toBe("1");
    const seen = (await stateLog(page))[target.name] ?? [];
    const crashAt = seen.indexOf("exited");
    expect(crashAt, seen.join(" → ")).toBeGreaterThan(0);
    expect(seen.slice(crashAt), seen.join(" → ")).toContain("ready");
    expect(await stillSameDocument(page)).toBe(true);

    const after = (await status(app)).find((r) => r.modelId === target.id)!;
    expect(after.state).toBe("ready");
    expect(after.pid).not.toBe(before.pid);
    await screenshot("recovered");
    await app.trpc.mutation("servers.stopAll");
  });

  it("a port saved while the server runs: the PORT cell shows the running port and, under it, the next start's, inside the cell", async () => {
    const target = models[1]!;
    const started = await app.trpc.mutation("servers.start", { id: target.id, wait: true });
    expect(started.error, JSON.stringify(started.error)).toBeUndefined();
    const newPort = await freePort();
    await app.trpc.mutation("models.update", { id: target.id, port: newPort });
    const { page, screenshot } = await openPage(browser(), app, { name: "fleet-pending-port", viewport: WIDE });
    await page.goto("/");
    await waitForRowState(page, target.name, "ready", 15_000);
    const cell = await columnCell(page, target.name, "Port");
    await expect.poll(() => cell.getAttribute("title"), { timeout: 10_000 }).not.toBeNull();
    // Every line of it inside the cell's padding box, left of the State cell: nothing runs into STATE.
    // What a sighted user sees: the text outside the visually hidden words (they are clipped to 1 px, but a
    // range over them still spans their unclipped layout).
    const fit = await cell.evaluate((td) => {
      const visible = (root: Node) => {
        const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
        const box = { text: "", left: Infinity, right: -Infinity, top: Infinity, bottom: -Infinity };
        for (let n = walk.nextNode(); n; n = walk.nextNode()) {
          if (n.parentElement?.closest(".visually-hidden") || !n.textContent?.trim()) continue;
          const range = document.createRange();
          range.selectNodeContents(n);
          const r = range.getBoundingClientRect();
          box.text += n.textContent;
          box.left = Math.min(box.left, r.left);
          box.right = Math.max(box.right, r.right);
          box.top = Math.min(box.top, r.top);
          box.bottom = Math.max(box.bottom, r.bottom);
        }
        return box;
      };
      const c = td.getBoundingClientRect();
      return { cell: { left: c.left, right: c.right, top: c.top, bottom: c.bottom }, next: td.nextElementSibling!.getBoundingClientRect().left, all: visible(td), lines: [...td.children].map(visible) };
    });
    // The whole text inside the cell, left of the State cell (before: "3423 (3424 at restart)", 163 px in a 66 px cell).
    expect(fit.all.right, JSON.stringify(fit)).toBeLessThanOrEqual(Math.min(fit.cell.right, fit.next));
    // Two lines, the running port over the next start's.
    expect(fit.lines.map((l) => l.text)).toEqual([String(target.port), `→ ${newPort}`]);
    expect(fit.lines[1]!.top, JSON.stringify(fit)).toBeGreaterThanOrEqual(fit.lines[0]!.bottom - 1);
    for (const l of fit.lines) {
      expect(l.right, JSON.stringify(fit)).toBeLessThanOrEqual(fit.cell.right);
      expect(l.right, JSON.stringify(fit)).toBeLessThanOrEqual(fit.next);
      expect(l.top, JSON.stringify(fit)).toBeGreaterThanOrEqual(fit.cell.top);
      expect(l.bottom, JSON.stringify(fit)).toBeLessThanOrEqual(fit.cell.bottom);
    }
    // A screen reader and the pointer get the words.
    expect(await cell.textContent()).toBe(`${target.port}→ (${newPort} at restart)`);
    expect(await cell.getAttribute("title")).toBe(`The running server keeps port ${target.port}; its next start uses ${newPort}`);
    await screenshot("1280-running");
    await app.trpc.mutation("servers.stopAll");
  });

  it("a long model name reads whole at 1280 px: it wraps in its cell, nothing of it is cut", async () => {
    const long = "Meta-Llama-3.1-8B-Instruct-abliterated-Q4_K_M-imatrix";
    await arrangeModels(app, [{ name: long, enabled: false }]);
    const { page, screenshot } = await openPage(browser(), app, { name: "fleet-long-name", viewport: WIDE });
    await page.goto("/");
    await waitForRowState(page, long, "stopped", 15_000);
    const [name] = await textBoxes(page, '[data-testid="model-list"]', [long]);
    expect(name, JSON.stringify(name)).toMatchObject({ found: true, clippedBy: null });
    // It stays in the Model column (wrapped, not running into the Host column).
    const cell = await (await columnCell(page, long, "Host")).boundingBox();
    expect(name!.box!.right, JSON.stringify(name)).toBeLessThanOrEqual(cell!.x);
    await expect.poll(() => row(page, long).getByRole("link", { name: long, exact: true }).isVisible()).toBe(true);
    await screenshot();
  });
});
