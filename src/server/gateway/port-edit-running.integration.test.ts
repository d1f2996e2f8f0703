/**
 * A port changed while the model runs is what its next start uses; until then the gateway, the status view
 * (the CLI's PORT, the dashboard's row) and the metrics reads talk to the port the running process has
 * (ServerState.port, as its agent reported it). Before, the saved port took over at once: requests got 502
 * "nothing listens on 127.0.0.1:NEW" and status showed a port nothing listened on, until a restart.
 *
 * The gateway over the fleet fixture (migrated SQLite, local agent, real llama-server, tiny models), the edit
 * through the registry service the tRPC `models.update` calls, the official `openai` client.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../../host-agent/test/harness/ports";
import { portFree, statusOf, waitFor } from "~/server/services/fleet/testing/fixture";
import { updateModel } from "~/server/services/registry/models";
import { table } from "~/client/cli";
import { gatewayFixture, type GatewayFixture, chat } from "./testing/gateway-fixture";


describe("gateway: a port changed while the model runs applies at its next restart", () => {
  let g: GatewayFixture;

  beforeAll(async () => {
    g = await gatewayFixture();
  });
  afterAll(async () => {
    await g?.dispose();
  });

  it("requests, status and the CLI's PORT use the running process's port until the restart, then the new one", async () => {
    const m = await g.addModel("tiny-b");
    const oldPort = m.port;
    expect((await g.f.fleet.start(m.id, { wait: true })).state).toBe("ready");
    const pid = (await statusOf(g.f, "tiny-b")).pid;
    expect((await g.client.chat.completions.create(chat("tiny-b"))).choices[0]?.message.content).toMatch(/^[a-z]+$/);

    const newPort = await freePort();
    const saved = await updateModel(g.f.t.db, { id: m.id, port: newPort }, { appPort: 3999, events: g.f.events });
    expect(saved.port).toBe(newPort);
    const edit = await g.f.t.db.event.findFirst({ where: { modelId: m.id, kind: "action" }, orderBy: { id: "desc" } });
    expect(edit?.message).toBe(`model tiny-b saved (port ${oldPort} → ${newPort}); its running server keeps port ${oldPort} until it is restarted`);

    // The same process answers, on the port it has, whether or not the gateway has read the edit yet.
    for (let i = 0; i < 3; i++) {
      expect((await g.client.chat.completions.create(chat("tiny-b"))).choices[0]?.message.content).toMatch(/^[a-z]+$/);
      await new Promise((r) => setTimeout(r, 1100));
    }
    expect((await g.adapter.models({ fresh: true })).find((x) => x.name === "tiny-b")?.upstream).toEqual({ host: "127.0.0.1", port: oldPort });

    const running = await statusOf(g.f, "tiny-b");
    expect(running).toMatchObject({ state: "ready", pid, port: oldPort, pendingPort: newPort });
    expect(await portFree(oldPort)).toBe(false);
    const line = table([running], true).split("\n")[1]!;
    expect(line).toContain(`${oldPort} (${newPort} at restart)`);

    // A start of it (start-all, the CLI's start) leaves it running, and reports the port it runs on.
    const again = await g.f.fleet.start(m.id, { wait: true });
    expect(again).toMatchObject({ state: "ready", pid, port: oldPort });
    expect(again.error).toContain("restart it to apply the current settings");

    // The old port stays in use until the restart: another model is not given it.
    const other = await g.addModel("tiny-c");
    const refused = await updateModel(g.f.t.db, { id: other.id, port: oldPort }, { appPort: 3999, events: g.f.events }).then(
      () => null,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(refused?.code).toBe("CONFLICT");
    expect(refused?.message).toContain(`${oldPort} is in use by the running server of tiny-b on host`);
    expect(refused?.message).toContain(`restart tiny-b first`);

    expect((await g.f.fleet.restart(m.id, { wait: true })).state).toBe("ready");
    const restarted = await statusOf(g.f, "tiny-b");
    expect(restarted).toMatchObject({ state: "ready", port: newPort, pendingPort: null });
    expect(restarted.pid).not.toBe(pid);
    expect(await portFree(oldPort)).toBe(true);
    expect((await updateModel(g.f.t.db, { id: other.id, port: oldPort }, { appPort: 3999, events: g.f.events })).port).toBe(oldPort);
    expect(table([restarted], true).split("\n")[1]).not.toContain("at restart");
    await waitFor("the gateway to route tiny-b to its new port", async () => (await g.adapter.models()).find((x) => x.name === "tiny-b")?.upstream?.port === newPort, 5_000);
    expect((await g.client.chat.completions.create(chat("tiny-b"))).choices[0]?.message.content).toMatch(/^[a-z]+$/);

    // Stopped: nothing runs, the registry's port is the one shown (nothing pending).
    await g.f.fleet.stop(m.id);
    expect(await statusOf(g.f, "tiny-b")).toMatchObject({ state: "stopped", port: newPort, pendingPort: null });
  });
});
