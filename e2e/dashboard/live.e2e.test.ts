/**
 * The live connection: after the app restarts, the page says
 * "reconnecting", the event stream comes back by itself, and the page
 * refetches what changed meanwhile, without a reload. While the app shuts
 * down, every page says so, and what it waits for. And with
 * SYNAPSE_API_TOKEN set, the page asks for the token and then works.
 */
import { afterAll, describe, expect, it } from "vitest";
import { freePorts } from "../../host-agent/test/harness/ports";
import { tinyModel } from "../../host-agent/test/harness/tiny-model";
import { openDatabase } from "../../src/server/db/client";
import { startApp, type AppServer } from "../../test/harness/app-server";
import { streamLongReply } from "../../test/harness/long-reply";
import { expectTestId, openPage, useBrowser } from "../harness/browser";
import { markDocument, stillSameDocument, WIDE, NARROW } from "./fleet-helpers";

const browser = useBrowser();
// While the app is down the browser's requests fail; Chromium logs each failure.
const WHILE_DOWN = [/ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|ERR_CONNECTION_RESET|ERR_INCOMPLETE_CHUNKED_ENCODING|Failed to load resource|EventSource/];

describe("live updates and sign-in (production build)", () => {
  const apps: AppServer[] = [];
  afterAll(async () => {
    for (const a of apps) await a.dispose();
  });

  it("reconnects after the app restarts and shows what changed meanwhile", async () => {
    const first = await startApp({ name: "dashboard-live" });
    apps.push(first);
    const { page, screenshot } = await openPage(browser(), first, { name: "live-reconnect", viewport: WIDE, allowConsole: WHILE_DOWN });
    await page.goto("/");
    await expectTestId(page, "empty-state");
    const indicator = page.getByTestId("connection-state");
    await expect.poll(() => indicator.getAttribute("data-state")).toBe("live");
    await markDocument(page);

    await first.stop();
    await expect.poll(() => indicator.getAttribute("data-state"), { timeout: 15_000 }).toBe("reconnecting");
    await screenshot("reconnecting");

    // A model appears while the app is down (another client, the import CLI…).
    const db = openDatabase(first.dirs.database, { migrate: false });
    const host = await db.host.findFirstOrThrow();
    await db.model.create({ data: { name: "added-while-down", hostId: host.id, filePath: "/models/while-down.gguf", port: 18_282 } });
    await db.$disconnect();

    const second = await startApp({ name: "dashboard-live-2", dirs: first.dirs, port: first.port });
    apps.push(second);
    await expect.poll(() => indicator.getAttribute("data-state"), { timeout: 30_000 }).toBe("live");
    const list = await expectTestId(page, "model-list", { timeoutMs: 15_000 });
    expect(await list.textContent()).toContain("added-while-down");
    expect(await stillSameDocument(page)).toBe(true);
    await screenshot("back");
  });

  it("while the app shuts down, the page says what it waits for and what comes next, then that it has shut down (a trial saw Live and READY through the whole wait)", async () => {
    const app = await startApp({ name: "dashboard-shutdown" });
    apps.push(app);
    const file = await tinyModel(app.dirs.modelRoot, "long.gguf", { contextLength: 65_536 });
    const [port] = await freePorts(1);
    expect((await app.trpc.mutation("models.create", { name: "long", filePath: file, port, enabled: true, ctxSize: 65_536, threads: 1 })).error).toBeUndefined();
    expect((await app.json<{ results: { state: string }[] }>("/api/models/servers/start-all", { method: "POST" })).body.results[0]?.state).toBe("ready");
    const { page, screenshot } = await openPage(browser(), app, { name: "live-shutdown", viewport: WIDE, allowConsole: WHILE_DOWN });
    await page.goto("/");
    const indicator = page.getByTestId("connection-state");
    await expect.poll(() => indicator.getAttribute("data-state")).toBe("live");
    const banner = page.getByTestId("shutdown-banner");
    expect(await banner.count(), "no banner while the app runs").toBe(0);

    // A reply of tens of seconds, under way when the app is told to stop.
    const reply = await streamLongReply(app, "long");
    expect(reply.status).toBe(200);

    process.kill(app.pid, "SIGTERM");
    await expect.poll(() => banner.getAttribute("data-phase"), { timeout: 10_000 }).toBe("waiting");
    // The header too: not "Live" through the wait (a trial).
    await expect.poll(() => indicator.textContent()).toBe("Shutting down…");
    expect(await banner.textContent()).toMatch(/^The app is shutting down: new gateway requests are refused \(503 app_shutting_down\)\. It waits for the request in flight, \d+ s more at most, then goes on to stop every server it manages; a second Ctrl-C \(or SIGTERM\) ends the wait\.$/);
    await screenshot("waiting");

    // A second signal ends the wait; the servers are stopped, the app exits, and the page says it has shut down.
    await new Promise((r) => setTimeout(r, 3200));
    expect(await app.stop("SIGTERM")).toMatchObject({ code: 0, leftovers: [] });
    expect(await reply.text).toMatch(/"code":"app_shutting_down"/);
    await expect.poll(() => banner.getAttribute("data-phase"), { timeout: 15_000 }).toBe("gone");
    expect(await banner.textContent()).toBe("The app has shut down (it stopped every server it manages). This page shows what it last saw, and reconnects when the app is back.");
    await screenshot("gone");
  });

  it("with an API token: the page asks for it, refuses a wrong one, then works", async () => {
    const token = "e2e-dashboard-token-0123456789";
    const app = await startApp({ name: "dashboard-token", env: { SYNAPSE_API_TOKEN: token } });
    apps.push(app);
    const unauthorized = [/status of 401|Failed to load resource|EventSource/];
    for (const [label, viewport] of [["1280", WIDE], ["390", NARROW]] as const) {
      const { page, screenshot } = await openPage(browser(), app, { name: `login-${label}`, viewport, login: false, allowConsole: unauthorized });
      await page.goto("/");
      const form = await expectTestId(page, "token-form");
      await screenshot("asked");
      await form.getByLabel("Token").fill("wrong-token-wrong-token");
      await form.getByRole("button", { name: "Sign in" }).click();
      await form.getByText("not the one the app was started with").waitFor();
      await form.getByLabel("Token").fill(token);
      await form.getByRole("button", { name: "Sign in" }).click();
      await expectTestId(page, "empty-state");
      await expect.poll(() => page.getByTestId("connection-state").getAttribute("data-state"), { timeout: 20_000 }).toBe("live");
    }
  });
});
