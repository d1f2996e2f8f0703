/**
 * The live connection: after the app restarts, the page says
 * "reconnecting", the event stream comes back by itself, and the page
 * refetches what changed meanwhile, without a reload. And with
 * SYNAPSE_API_TOKEN set, the page asks for the token and then works.
 */
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase } from "../../src/server/db/client";
import { startApp, type AppServer } from "../../test/harness/app-server";
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
