/**
 * An SSH host end to end through the hosts page, against a real sshd that
 * forces the real scripts/ssh-wrapper.sh (which runs the host agent): add
 * the host, test the connection (agent, llama-server, the host key the
 * server presented, not yet pinned), pin that key, test again (pinned); a
 * replaced host key is refused and the page says so. Editing its upstream
 * mode saves only the chosen mode's field; a refusal for the field the
 * chosen mode hides is listed above the form. A host that goes away: the
 * fleet row says its state is the last known, a restart and a stop wait for the host, and its memory bar says
 * its figures are the last known.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDirs, type TestDirs } from "../../host-agent/test/harness/fixtures";
import { llamaServerBin } from "../../host-agent/test/harness/llama-server";
import { installHostWrapper } from "../../host-agent/test/harness/ssh-wrapper";
import { startSshd, type SshdFixture } from "../../host-agent/test/harness/sshd";
import { startApp, type AppServer } from "../../test/harness/app-server";
import { expectTestId, openPage, useBrowser } from "../harness/browser";
import { freePort } from "../../host-agent/test/harness/ports";
import { tinyModel } from "../../host-agent/test/harness/tiny-model";
import { NARROW, tinyDefaults, WIDE } from "./fleet-helpers";

const browser = useBrowser();
// A refused connection test is an HTTP 4xx/5xx, which Chromium logs.
const REFUSED = [/status of [45]\d\d/];

describe("hosts page with a real sshd (production build)", () => {
  let app: AppServer;
  let remote: TestDirs;
  let sshd: SshdFixture;
  let keyFile: string;

  beforeAll(async () => {
    remote = await testDirs("synapse-e2e-ssh-host-");
    const wrapper = await installHostWrapper(remote);
    sshd = await startSshd({ forcedCommand: wrapper.path });
    // As under `npm start`: the app is started from the user's folder (not the build's, which Next's
    // server changes to), and the key is where the form's example path says, relative to that folder.
    const userDir = path.join(remote.root, "user");
    keyFile = path.join(userDir, "host-api", ".ssh", "id_ed25519");
    await mkdir(path.dirname(keyFile), { recursive: true });
    await writeFile(keyFile, sshd.clientKey.privateKey, { mode: 0o600 });
    app = await startApp({ name: "dashboard-hosts-ssh", cwd: userDir });
  });
  afterAll(async () => {
    await app?.dispose();
    await sshd?.dispose();
    await remote?.cleanup();
  });

  it("add the host, test it, pin the key it presented; a replaced key is refused", async () => {
    const { page, screenshot } = await openPage(browser(), app, { name: "hosts-ssh", viewport: WIDE, allowConsole: REFUSED });
    await page.goto("/hosts");
    await page.getByTestId("add-host").click();
    const form = await expectTestId(page, "host-form");
    await form.getByRole("textbox", { name: "Name", exact: true }).fill("mac-mini");
    await form.getByLabel("SSH host").fill(sshd.host);
    await form.getByLabel("SSH user").fill(sshd.user);
    await form.getByLabel("SSH port").fill(String(sshd.port));
    // The hint's own example, relative (was: resolved against the build folder, ENOENT).
    const keyField = form.getByLabel("Private key file");
    expect(await page.locator(`[id="${await keyField.getAttribute("aria-describedby")}"]`).textContent()).toContain(
      "a relative path is under the folder the app was started from",
    );
    await keyField.fill("host-api/.ssh/id_ed25519");
    await form.getByLabel("Model ports").fill("8080-8099");
    await page.getByTestId("save-host").click();

    const card = page.locator('[data-testid="host-card"][data-host-name="mac-mini"]');
    await card.waitFor();
    expect(await card.getByTestId("host-upstream").textContent()).toBe("through the SSH connection, model ports 8080-8099");
    expect(await app.db().host.findUniqueOrThrow({ where: { name: "mac-mini" } })).toMatchObject({ upstreamMode: "tunnel", modelPorts: "8080-8099" });
    expect(await card.getByTestId("pinned-fingerprint").textContent()).toMatch(/not pinned/);
    await card.getByTestId("test-host").click();
    const result = card.getByTestId("host-test-result");
    await result.waitFor({ timeout: 30_000 });
    expect(await result.textContent()).toMatch(/Connected/);
    expect(await result.textContent()).toContain(llamaServerBin());
    expect(await card.getByTestId("seen-fingerprint").textContent()).toBe(sshd.hostFingerprint());
    await screenshot("tested");

    await card.getByTestId("pin-key").click();
    await expect.poll(() => card.getByTestId("pinned-fingerprint").textContent()).toBe(sshd.hostFingerprint());
    expect((await app.db().host.findUniqueOrThrow({ where: { name: "mac-mini" } })).hostKeyFingerprint).toBe(sshd.hostFingerprint());
    await card.getByTestId("test-host").click();
    await expect.poll(() => result.textContent()).toMatch(/This key is pinned/);
    await screenshot("pinned");

    const narrow = await openPage(browser(), app, { name: "hosts-ssh-390", viewport: NARROW });
    await narrow.page.goto("/hosts");
    await narrow.page.locator('[data-testid="host-card"][data-host-name="mac-mini"]').waitFor();
    await narrow.screenshot();
    await narrow.context.close();

    // The Mac was reinstalled (new host key): the pinned link refuses it, and the pin stays.
    const pinned = sshd.hostFingerprint();
    await sshd.regenerateHostKey();
    await card.getByTestId("test-host").click();
    await expect.poll(() => result.getAttribute("data-ok"), { timeout: 30_000 }).toBe("false");
    expect(await result.textContent()).toMatch(/Connection failed/);
    expect((await app.db().host.findUniqueOrThrow({ where: { name: "mac-mini" } })).hostKeyFingerprint).toBe(pinned);
    expect(await card.getByTestId("pinned-fingerprint").textContent()).toBe(pinned);
    await screenshot("key-changed");
  });

  it("edit the host's upstream mode: each mode saves its own field, the hidden one of the other mode is cleared", async () => {
    const { page } = await openPage(browser(), app, { name: "hosts-ssh-mode", viewport: WIDE });
    await page.goto("/hosts");
    const card = page.locator('[data-testid="host-card"][data-host-name="mac-mini"]');
    const edit = async () => {
      await card.getByRole("button", { name: "Edit", exact: true }).click();
      return card.getByTestId("host-form");
    };
    const stored = () => app.db().host.findUniqueOrThrow({ where: { name: "mac-mini" } });

    // Direct mode: the model ports typed earlier (now hidden) are not sent, so they are cleared.
    let form = await edit();
    await form.getByLabel("Gateway reaches its models").selectOption("direct");
    await form.getByLabel("Direct address").fill("10.0.0.5");
    await form.getByTestId("save-host").click();
    await expect.poll(() => card.getByTestId("host-upstream").textContent()).toBe("direct: 10.0.0.5:PORT");
    expect(await stored()).toMatchObject({ upstreamMode: "direct", directAddress: "10.0.0.5", modelPorts: null });

    // Back to the tunnel: the hidden direct address is cleared, the range typed again is saved.
    form = await edit();
    await form.getByLabel("Gateway reaches its models").selectOption("tunnel");
    await form.getByLabel("Model ports").fill("8080-8089");
    await form.getByTestId("save-host").click();
    await expect.poll(() => card.getByTestId("host-upstream").textContent()).toBe("through the SSH connection, model ports 8080-8089");
    expect(await stored()).toMatchObject({ upstreamMode: "tunnel", directAddress: null, modelPorts: "8080-8089" });
  });

  it("a host that goes away: the fleet row says its state is the last known and why the host is unreachable, freezes uptime and tok/s; a stop is recorded and made once it is back", async () => {
    await tinyDefaults(app);
    const host = await app.db().host.create({
      data: { name: "mac-away", linkKind: "ssh", sshHost: sshd.host, sshPort: sshd.port, sshUser: sshd.user, sshIdentityFile: "host-api/.ssh/id_ed25519", hostKeyFingerprint: sshd.hostFingerprint() },
    });
    const created = await app.trpc.mutation<{ id: string }>("models.create", { name: "remote-tiny", hostId: host.id, filePath: await tinyModel(remote.modelRoot, "remote-tiny.gguf"), port: await freePort(), enabled: true });
    expect(created.error, JSON.stringify(created.error)).toBeUndefined();
    const started = await app.trpc.mutation<{ state: string }>("servers.start", { id: created.data!.id, wait: true });
    expect(started.data?.state, JSON.stringify(started)).toBe("ready");

    const { page, screenshot } = await openPage(browser(), app, { name: "hosts-ssh-away", viewport: WIDE, allowConsole: REFUSED });
    await page.goto("/");
    const row = page.locator('[data-testid="model-row"][data-model-name="remote-tiny"]');
    const badge = row.getByTestId("state-badge");
    await expect.poll(() => badge.getAttribute("data-state"), { timeout: 15_000 }).toBe("ready");
    expect(await badge.getAttribute("data-tone")).toBe("ok");
    expect(await row.getByTestId("host-unreachable").count()).toBe(0);

    await sshd.stop({ dropSessions: true });
    const unreachable = row.getByTestId("host-unreachable");
    await unreachable.waitFor({ timeout: 30_000 });
    expect(await unreachable.textContent()).toMatch(/^last known · host mac-away unreachable.*mac-away/);
    // Still the last known state, and not a green READY.
    expect(await badge.getAttribute("data-state")).toBe("ready");
    expect(await badge.getAttribute("data-tone")).toBe("idle");
    expect(await badge.getAttribute("title")).toMatch(/^last known: /);
    const uptime = row.locator('[data-label="Uptime"]');
    const frozen = await uptime.textContent();
    expect(frozen).toMatch(/^\d+ s at last contact$/);
    await page.waitForTimeout(2100);
    expect(await uptime.textContent()).toBe(frozen);
    expect(await row.locator('[data-label="Activity"]').textContent()).not.toMatch(/tok\/s/);
    expect(await page.getByTestId("fleet-summary").textContent()).toMatch(/on (an )?unreachable hosts?/);
    await screenshot("host-away");
    // The model's own page says the same.
    const modelPage = await openPage(browser(), app, { name: "hosts-ssh-away-model", viewport: WIDE });
    await modelPage.page.goto(`/models/${created.data!.id}`);
    await expect.poll(() => modelPage.page.getByTestId("host-unreachable").textContent(), { timeout: 15_000 }).toBe("last known · host mac-away unreachable");
    expect(await modelPage.page.getByTestId("state-badge").getAttribute("data-tone")).toBe("idle");
    await modelPage.context.close();

    // The host's memory bar: its figures are the last known, not "estimated for running servers".
    await expect.poll(() => page.locator('[data-testid="memory-bar"][data-host-name="mac-away"]').getByTestId("memory-figures").textContent(), { timeout: 30_000 }).toMatch(/^host mac-away cannot be reached: \S+ MiB estimated for the servers running when last known.* left when last known$/);
    // The Hosts card: the agent's reading is the last contact's, with its time (a trial's card said "free now").
    const hostsPage = await openPage(browser(), app, { name: "hosts-ssh-away-card", viewport: WIDE });
    await hostsPage.page.goto("/hosts");
    const awayCard = hostsPage.page.locator('[data-testid="host-card"][data-host-name="mac-away"]');
    await expect.poll(() => awayCard.getByTestId("host-free-memory").textContent(), { timeout: 15_000 }).toMatch(/free at last contact, \d\d:\d\d:\d\d$/);
    expect(await awayCard.getByTestId("host-budget-age").textContent()).toMatch(/as read at last contact, \d\d:\d\d:\d\d$/);
    await hostsPage.context.close();
    // Restart while it is away: nothing is stopped; recorded, said as a stop is, and the row keeps saying it.
    await row.getByRole("button", { name: "Restart", exact: true }).click();
    await expect.poll(() => page.getByTestId("toasts").textContent(), { timeout: 15_000 }).toMatch(/restart recorded, not yet made: host mac-away cannot be reached now \(.+\); remote-tiny is restarted when the host is reachable again/);
    await expect.poll(() => row.getByTestId("host-unreachable").textContent(), { timeout: 15_000 }).toMatch(/^last known · host mac-away unreachable · restart recorded, made when it is back/);
    expect(await page.getByTestId("toasts").textContent()).not.toMatch(/Restart failed/);
    await screenshot("restart-pending");

    // Stop while it is away (the last command: the restart is dropped): recorded, and the toast says when it is made.
    await row.getByRole("button", { name: "Stop", exact: true }).click();
    await expect.poll(() => page.getByTestId("toasts").textContent(), { timeout: 15_000 }).toMatch(/stop recorded, not yet made: host mac-away cannot be reached now \(.+\); remote-tiny is stopped when the host is reachable again/);
    // And the row keeps saying so (a trial saw it only in the CLI's one line).
    await expect.poll(() => row.getByTestId("host-unreachable").textContent(), { timeout: 15_000 }).toMatch(/^last known · host mac-away unreachable · stop recorded, made when it is back/);
    await screenshot("stop-pending");

    // Back: the stop is made; nothing says the host is unreachable any more.
    await sshd.start();
    await expect.poll(() => badge.getAttribute("data-state"), { timeout: 60_000, interval: 500 }).toBe("stopped");
    await expect.poll(() => row.getByTestId("host-unreachable").count()).toBe(0);
    expect(await row.getByTestId("last-error").textContent()).toBe("");
    await page.context().close();
  });

  it("a refusal for a field the current mode hides is listed above the form, and the typed model ports survive a mode switch", async () => {
    const { page, screenshot } = await openPage(browser(), app, { name: "hosts-ssh-hidden-issue", viewport: WIDE, allowConsole: REFUSED });
    await page.goto("/hosts");
    const card = page.locator('[data-testid="host-card"][data-host-name="mac-mini"]');
    const host = await app.db().host.findUniqueOrThrow({ where: { name: "mac-mini" } });
    // A model at 8085: a narrower range would leave it outside, which the server refuses on modelPorts.
    await app.db().model.create({ data: { name: "e2e-port-8085", hostId: host.id, filePath: "/models/e2e-port-8085.gguf", port: 8085 } });

    await card.getByRole("button", { name: "Edit", exact: true }).click();
    const form = card.getByTestId("host-form");
    const ports = form.getByLabel("Model ports");
    await ports.fill("8090-8099");
    await form.getByTestId("save-host").click();
    const refusal = "models on host mac-mini use ports outside 8090-8099: e2e-port-8085 (8085)";
    await expect.poll(() => ports.getAttribute("aria-invalid")).toBe("true");
    expect(await form.getByTestId("form-errors").textContent()).toBe("Not saved: fix the fields marked below.");

    // Direct mode hides the model ports: the refusal is listed with the field's name, not left pointing at nothing.
    await form.getByLabel("Gateway reaches its models").selectOption("direct");
    await expect.poll(() => form.getByTestId("form-errors").textContent()).toContain(refusal);
    expect(await form.getByTestId("form-errors").textContent()).toMatch(/^Not saved: fix what is listed here\.Model ports: models on host mac-mini/);
    await screenshot("hidden-field-refused");

    // Back to the tunnel: the range typed in this edit is still there, marked again.
    await form.getByLabel("Gateway reaches its models").selectOption("tunnel");
    expect(await ports.inputValue()).toBe("8090-8099");
    expect(await ports.getAttribute("aria-invalid")).toBe("true");
    expect(await form.getByTestId("form-errors").textContent()).toBe("Not saved: fix the fields marked below.");
    expect(await app.db().host.findUniqueOrThrow({ where: { name: "mac-mini" } })).toMatchObject({ upstreamMode: "tunnel", modelPorts: "8080-8089" });
  });
});
