/**
 * A machine without llama-server: the hosts page's connection test and the
 * fleet (a start that fails, with its reason on the row) both say how to
 * install it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApp, type AppServer } from "../../test/harness/app-server";
import { expectTestId, openPage, useBrowser } from "../harness/browser";
import { arrangeModels, row, waitForRowState, WIDE } from "./fleet-helpers";

const browser = useBrowser();

describe("llama-server missing (production build)", () => {
  let app: AppServer;

  beforeAll(async () => {
    app = await startApp({ name: "dashboard-no-llama", env: { LLAMA_SERVER_BIN: "/nonexistent/llama-server", PATH: "/usr/bin:/bin" } });
    await arrangeModels(app, [{ name: "hotel", enabled: true }]);
  });
  afterAll(async () => {
    await app?.dispose();
  });

  it("the host's connection test explains how to install it", async () => {
    const { page, screenshot } = await openPage(browser(), app, { name: "hosts-no-llama-server", viewport: WIDE });
    await page.goto("/hosts");
    await (await expectTestId(page, "host-card")).first().getByTestId("test-host").click();
    const notice = await expectTestId(page, "llama-server-missing", { timeoutMs: 30_000 });
    expect(await notice.textContent()).toContain("brew install llama.cpp");
    expect(await notice.textContent()).toContain("LLAMA_SERVER_BIN");
    // This host is Linux: its way comes first, with the packages the build needs.
    expect(await notice.getAttribute("data-platform")).toBe("linux");
    expect(await notice.getByTestId("llama-install-linux").textContent()).toMatch(/^On Linux \(this host\): build it with npm run llama:build .*sudo apt-get install cmake g\+\+ git openssl/);
    // The card's llama-server line gives the agent's reason (here: LLAMA_SERVER_BIN names a missing file), not "found on PATH".
    const line = (await expectTestId(page, "host-llama-server")).first();
    await expect.poll(async () => (await page.reload(), await line.locator("[data-missing]").count()), { timeout: 15_000 }).toBe(1);
    expect(await line.textContent()).toContain("/nonexistent/llama-server");
    expect(await line.textContent()).not.toMatch(/found on PATH|the agent found it/);
    await screenshot();
  });

  it("START ALL ENABLED: the row fails with the reason and the page says how to install llama-server", async () => {
    const { page, screenshot } = await openPage(browser(), app, { name: "fleet-no-llama-server", viewport: WIDE, allowConsole: [/status of 5\d\d/] });
    await page.goto("/");
    await expectTestId(page, "model-list");
    await page.getByTestId("start-all").click();
    await waitForRowState(page, "hotel", "failed", 30_000);
    expect(await row(page, "hotel").getByTestId("last-error").textContent()).toMatch(/llama-server|LLAMA_SERVER_BIN/);
    const notice = await expectTestId(page, "llama-server-missing");
    expect(await notice.textContent()).toContain("brew install llama.cpp");
    await screenshot();
  });
});
