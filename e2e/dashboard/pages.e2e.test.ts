/**
 * Every page on a fresh app, at 1280 and 390 px (screenshots kept under
 * test-results/screenshots/): the empty fleet, discover + scan of real GGUF
 * files, hosts with a connection test, settings with inline errors; the
 * pages answer the keyboard (focus moves through real controls).
 */
import { execFileSync } from "node:child_process";
import { rm, symlink } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyModelSplit } from "../../host-agent/src/gguf/tiny-model";
import { tinyModel } from "../../host-agent/test/harness/tiny-model";
import { REPO_ROOT } from "../../test/harness/app-build";
import { startApp, type AppServer } from "../../test/harness/app-server";
import { expectTestId, openPage, useBrowser } from "../harness/browser";
import { NARROW, WIDE } from "./fleet-helpers";

// A refused save is an HTTP 400, which Chromium logs as a failed resource.
const REFUSED = [/status of 400 \(Bad Request\)/];

const browser = useBrowser();

describe("dashboard pages (production build, fresh database)", () => {
  let app: AppServer;

  beforeAll(async () => {
    app = await startApp({ name: "dashboard-pages" });
  });
  afterAll(async () => {
    await app?.dispose();
  });

  it("fleet: the empty state on a fresh database points to discover and import", async () => {
    for (const [label, viewport] of [["1280", WIDE], ["390", NARROW]] as const) {
      const { page, screenshot } = await openPage(browser(), app, { name: `fleet-empty-${label}`, viewport });
      const res = await page.goto("/");
      expect(res?.status()).toBe(200);
      const empty = await expectTestId(page, "empty-state");
      expect(await empty.textContent()).toMatch(/No models yet/);
      expect(await page.getByTestId("model-list").count()).toBe(0);
      expect(await empty.getByRole("link", { name: "Discover models" }).getAttribute("href")).toBe("/discover");
      await expect.poll(() => page.getByTestId("connection-state").getAttribute("data-state")).toBe("live");
      // No horizontal scrolling at this width.
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      // Every page of the navigation is in view (at 390 px a sideways-scrolling strip had hidden Settings).
      const links = page.getByRole("navigation", { name: "Main" }).getByRole("link");
      expect(await links.count()).toBeGreaterThanOrEqual(6);
      for (const link of await links.all()) {
        const box = await link.boundingBox();
        expect(box, `${await link.textContent()} has a box`).not.toBeNull();
        expect(box!.x, `${await link.textContent()} starts in view`).toBeGreaterThanOrEqual(0);
        expect(box!.x + box!.width, `${await link.textContent()} ends in view`).toBeLessThanOrEqual(viewport.width);
      }
      await screenshot();
    }
  });

  it("keyboard: skip link, then the navigation, all reachable with Tab and shown with a focus ring", async () => {
    const { page } = await openPage(browser(), app, { name: "keyboard-focus", viewport: WIDE });
    await page.goto("/");
    await expectTestId(page, "empty-state");
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");
    const seen: string[] = [];
    for (let i = 0; i < 7; i++) {
      await page.keyboard.press("Tab");
      seen.push(await page.evaluate(() => document.activeElement?.textContent?.trim() ?? ""));
    }
    expect(seen).toEqual(expect.arrayContaining(["Fleet", "Discover & import", "Hosts", "Activity", "Settings"]));
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    expect(outline).not.toBe("none");
  });

  it("import: the seed's model_registry.json and runtime_settings.json as they are; refused entries say why", async () => {
    const seed = path.join(REPO_ROOT, "test", "fixtures", "seed");
    const { page, screenshot } = await openPage(browser(), app, { name: "import-1280", viewport: WIDE });
    await page.goto("/discover#import");
    const form = await expectTestId(page, "import-form");
    await page.getByTestId("import-registry").setInputFiles(path.join(seed, "backend", "data", "model_registry.json"));
    await page.getByTestId("import-runtime").setInputFiles(path.join(seed, "backend", "data", "runtime_settings.json"));
    await page.getByTestId("import-submit").click();
    const report = await expectTestId(page, "import-report", { timeoutMs: 30_000 });
    expect(await report.textContent()).toMatch(/Created/);
    expect(await report.textContent()).toContain("deepseek_r1_0528_8p0b_q4km_powerful");
    expect(await report.textContent()).toMatch(/Global defaults updated/);
    const names = (await app.db().model.findMany({ select: { name: true } })).map((m) => m.name);
    expect(names).toContain("deepseek_r1_0528_8p0b_q4km_powerful");
    expect((await app.db().runtimeSettings.findFirst())?.threads).toBe(10);
    await screenshot();

    // A file with bad entries: the good ones import, each bad one is listed with its field problems.
    await page.getByTestId("import-registry").setInputFiles(path.join(seed, "invalid", "model_registry.json"));
    await page.getByTestId("import-runtime").setInputFiles([]);
    await page.getByTestId("import-submit").click();
    await expect.poll(async () => (await page.getByTestId("import-report").textContent()) ?? "").toMatch(/Refused/);
    expect(await page.getByTestId("import-report").textContent()).toContain("privileged_port_model");
    await screenshot("refused");
    void form;
  });

  it("discover: a scan lists the GGUF files with their metadata; picked ones are enabled, and the banner says so; a rescan lists them with their status and enables a disabled one", async () => {
    await tinyModel(app.dirs.modelRoot, "foxtrot-q8.gguf");
    await tinyModel(app.dirs.modelRoot, "golf-f32.gguf");
    const { page, screenshot } = await openPage(browser(), app, { name: "discover-1280", viewport: WIDE });
    await page.goto("/discover");
    // It says which folders it scans (the local agent's, from SYNAPSE_MODEL_ROOTS), not the variable's name.
    await expect.poll(async () => (await page.getByTestId("scan-roots").textContent()) ?? "").toBe(path.resolve(app.dirs.modelRoot));
    await page.getByTestId("scan").click();
    const table = await expectTestId(page, "scan-results", { timeoutMs: 30_000 });
    await expect.poll(() => table.locator('[data-testid="scan-row"]').count()).toBe(2);
    expect(await table.textContent()).toMatch(/llama/);
    const row = (name: string) => table.locator('[data-testid="scan-row"]', { hasText: name });
    const status = (name: string) => row(name).getByTestId("scan-status").textContent();
    const summary = () => page.getByTestId("scan-summary").textContent();
    const enable = page.getByTestId("enable-picked");
    const [foxtrot, golf] = [await row("foxtrot").getAttribute("data-model-name"), await row("golf").getAttribute("data-model-name")];
    expect(await summary()).toMatch(/^Added 2 new models \(disabled\)\./);
    // Keep one: untick the other, enable the picked one.
    await row("golf").getByRole("checkbox").uncheck();
    expect(await enable.textContent()).toBe("Enable 1 selected");
    await enable.click();
    await expect.poll(async () => {
      const r = await app.trpc.query<{ name: string; enabled: boolean; architecture: string | null }[]>("models.list");
      return r.data?.filter((m) => /^(foxtrot|golf)/.test(m.name)).map((m) => `${m.name}:${m.enabled}:${m.architecture}`).sort();
    }).toEqual([expect.stringMatching(/^foxtrot.*:true:llama$/), expect.stringMatching(/^golf.*:false:llama$/)]);
    // The banner says what happened last (not "Added 2 new models (disabled)." beside a row now enabled);
    // the button keeps its count: none of the models left to enable is ticked.
    await expect.poll(summary).toBe(`Enabled 1 model: ${foxtrot}.`);
    expect([await status("foxtrot"), await status("golf")]).toEqual(["enabled", "new"]);
    expect(await enable.textContent()).toBe("Enable 0 selected");
    expect(await enable.isDisabled()).toBe(true);
    await screenshot();

    // Scanning again: both are listed with their status (nothing new); the disabled one is enabled the same way, no second row.
    await page.getByTestId("scan").click();
    await expect.poll(summary).toBe("No new model files. 2 already registered (1 disabled).");
    expect([await status("foxtrot"), await status("golf")]).toEqual(["enabled", "registered, disabled"]);
    expect(await enable.textContent()).toBe("Enable 0 selected");
    expect(await enable.isDisabled()).toBe(true);
    await row("golf").getByRole("checkbox").check();
    expect(await enable.textContent()).toBe("Enable 1 selected");
    await enable.click();
    await expect.poll(() => status("golf")).toBe("enabled");
    await expect.poll(summary).toBe(`Enabled 1 model: ${golf}.`);
    // Every listed model is enabled now: nothing left to enable, so no enable button.
    expect(await enable.count()).toBe(0);
    const listed = await app.trpc.query<{ name: string; enabled: boolean }[]>("models.list");
    expect(listed.data?.filter((m) => /^(foxtrot|golf)/.test(m.name)).map((m) => m.enabled)).toEqual([true, true]);
    await screenshot("rescan");

    const narrow = await openPage(browser(), app, { name: "discover-390", viewport: NARROW });
    await narrow.page.goto("/discover");
    await narrow.page.getByTestId("scan").click();
    await expectTestId(narrow.page, "scan-summary");
    await narrow.screenshot();
    await narrow.context.close();
  });

  it("discover: a split set is one row with a note; an incomplete set and a broken link are listed with what is wrong", async () => {
    await writeTinyModelSplit(path.join(app.dirs.modelRoot, "hotel"), 2);
    const [, india2] = await writeTinyModelSplit(path.join(app.dirs.modelRoot, "india"), 2);
    await rm(india2!);
    await symlink("gone/juliet.gguf", path.join(app.dirs.modelRoot, "juliet.gguf"));
    const { page, screenshot } = await openPage(browser(), app, { name: "discover-kept-1280", viewport: WIDE });
    await page.goto("/discover");
    await page.getByTestId("scan").click();
    const table = await expectTestId(page, "scan-results", { timeoutMs: 30_000 });
    const row = table.locator('[data-testid="scan-row"]', { hasText: "hotel" });
    await expect.poll(() => row.getByTestId("scan-note").textContent()).toBe("split set of 2 parts");
    // One new row; the models the first scan added are listed as registered.
    expect(await table.locator('[data-testid="scan-row"][data-status="new"]').count()).toBe(1);
    expect(await row.getAttribute("data-status")).toBe("new");
    const listed = page.locator("details", { hasText: "Skipped or unreadable" });
    expect(await listed.textContent()).toContain("incomplete split set: part 2 (india-00002-of-00002.gguf) of 2 missing");
    expect(await listed.textContent()).toContain("broken link: points to gone/juliet.gguf, which does not exist");
    await screenshot();
  });

  it("hosts: the local host's connection test shows the agent and llama-server; an SSH host can be added", async () => {
    const { page, screenshot } = await openPage(browser(), app, { name: "hosts-1280", viewport: WIDE, allowConsole: [...REFUSED, /status of 50\d/] });
    await page.goto("/hosts");
    const card = (await expectTestId(page, "host-card")).first();
    await card.getByTestId("test-host").click();
    const result = await expectTestId(page, "host-test-result", { timeoutMs: 30_000 });
    expect(await result.textContent()).toMatch(/Connected/);
    expect(await result.textContent()).toContain(process.env.LLAMA_SERVER_BIN!);
    // The host row sets no binary: the card says which one the agent found (here through LLAMA_SERVER_BIN).
    await expect.poll(async () => (await page.reload(), (await card.getByTestId("host-llama-server").textContent()) ?? ""), { timeout: 15_000 }).toContain(process.env.LLAMA_SERVER_BIN!);
    expect(await card.getByTestId("host-llama-server").textContent()).toContain("the agent found it");
    // The folders its agent scans (SYNAPSE_MODEL_ROOTS here), not "—".
    expect(await card.getByTestId("host-model-roots").textContent()).toBe(path.resolve(app.dirs.modelRoot));

    await page.getByTestId("add-host").click();
    const form = await expectTestId(page, "host-form");
    await form.getByRole("textbox", { name: "Name", exact: true }).fill("mac-studio");
    await form.getByLabel("SSH host").fill("127.0.0.1");
    await form.getByLabel("SSH user").fill("me");
    await form.getByLabel("SSH port").fill("1");
    const key = path.join(app.dirs.root, "id_ed25519");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
    await form.getByLabel("Private key file").fill(key);
    await form.getByLabel("Pinned host key").fill("not-a-fingerprint");
    await page.getByTestId("save-host").click();
    await form.locator(".field-error", { hasText: "SHA256" }).waitFor();
    expect((await app.db().host.findMany()).map((h) => h.name)).not.toContain("mac-studio");
    await form.getByLabel("Pinned host key").fill("");
    await page.getByTestId("save-host").click();
    const mac = page.locator('[data-testid="host-card"][data-host-name="mac-studio"]');
    await mac.waitFor();
    // Nothing listens on port 1: the test fails with the reason, fast (an HTTP 5xx the browser logs).
    await mac.getByTestId("test-host").click();
    await expect.poll(() => mac.getByTestId("host-test-result").textContent(), { timeout: 30_000 }).toMatch(/failed/i);
    await screenshot();

    const narrow = await openPage(browser(), app, { name: "hosts-390", viewport: NARROW });
    await narrow.page.goto("/hosts");
    await expectTestId(narrow.page, "host-card");
    await narrow.screenshot();
    await narrow.context.close();
  });

  it("settings: inline errors, nothing saved; a valid change saves", async () => {
    const { page, screenshot } = await openPage(browser(), app, { name: "settings-1280", viewport: WIDE, allowConsole: REFUSED });
    await page.goto("/settings");
    const form = await expectTestId(page, "settings-form");
    const before = await app.db().runtimeSettings.findFirst();
    await form.getByLabel("GPU layers").fill("5000");
    await form.getByLabel("Threads").fill("4");
    await page.getByTestId("save-settings").click();
    await form.locator(".field-error", { hasText: "between -1 and 999" }).waitFor();
    const unchanged = await app.db().runtimeSettings.findFirst();
    expect(unchanged?.gpuLayers).toBe(before?.gpuLayers ?? 99);
    expect(unchanged?.threads).toBe(before?.threads);
    await screenshot("invalid");

    await form.getByLabel("GPU layers").fill("99");
    const refetched = page.waitForResponse((r) => r.url().includes("settings.get"), { timeout: 15_000 });
    await page.getByTestId("save-settings").click();
    await expect.poll(async () => (await app.db().runtimeSettings.findFirst())?.threads).toBe(4);
    // The form is shown again with what was stored (refetched after the save), and still says it saved.
    await refetched;
    await new Promise((r) => setTimeout(r, 300));
    expect(await page.getByTestId("settings-save-state").textContent()).toBe("Saved.");

    const narrow = await openPage(browser(), app, { name: "settings-390", viewport: NARROW });
    await narrow.page.goto("/settings");
    await expectTestId(narrow.page, "settings-form");
    await narrow.screenshot();
    await narrow.context.close();
  });
});
