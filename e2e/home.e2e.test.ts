/**
 * The home page as users get it: the production build run by the image's
 * command, opened in Chromium. Relies on the dashboard's data-testids:
 * `empty-state` (no models) and `model-list` (which names each model).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApp, type AppServer } from "../test/harness/app-server";
import { expectTestId, expectTextIn, openPage, useBrowser } from "./harness/browser";

const browser = useBrowser();

describe("home page (production build)", () => {
  let app: AppServer;

  beforeAll(async () => {
    app = await startApp({ name: "home" });
  });
  afterAll(async () => {
    await app?.dispose();
  });

  it("answers /api/health with the app's version and a reachable database", async () => {
    const { status, body } = await app.json<{ status: string; version: string; database: { ok: boolean } }>("/api/health");
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: "ok", version: expect.stringMatching(/^\d+\.\d+\.\d+/), database: { ok: true } });
  });

  it("shows the empty state on a fresh database", async () => {
    const { page } = await openPage(browser(), app, { name: "home-empty" });
    const res = await page.goto("/");
    expect(res?.status()).toBe(200);
    const empty = await expectTestId(page, "empty-state");
    expect((await empty.textContent())?.trim()).not.toBe("");
    expect(await page.getByTestId("model-list").count()).toBe(0);
  });

  it("lists a model once the registry has one", async () => {
    const db = app.db();
    const host = await db.host.upsert({ where: { name: "local" }, create: { name: "local", linkKind: "local" }, update: {} });
    await db.model.create({ data: { name: "e2e-tiny-model", hostId: host.id, filePath: "/models/e2e-tiny.gguf", port: 18_181 } });

    const { page } = await openPage(browser(), app, { name: "home-one-model" });
    await page.goto("/");
    await expectTextIn(page, "model-list", "e2e-tiny-model");
    expect(await page.getByTestId("empty-state").count()).toBe(0);
  });

  it("keeps the registry across a restart and stops cleanly on SIGTERM", async () => {
    app = await app.restart();
    const checked = await openPage(browser(), app, { name: "home-after-restart" });
    await checked.page.goto("/");
    await expectTextIn(checked.page, "model-list", "e2e-tiny-model");
    // Close the page before the server goes: its live stream would be cut mid-response (a console error).
    await checked.screenshot();
    await checked.context.close();

    const stopped = await app.stop("SIGTERM");
    expect(stopped).toMatchObject({ code: 0, killed: false, leftovers: [] });
    expect(stopped.log.some((r) => r.component === "app" && r.msg === "stopped")).toBe(true);
  });
});
