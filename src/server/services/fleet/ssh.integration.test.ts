/**
 * The fleet over the REAL ssh link: a real sshd forcing the real
 * scripts/ssh-wrapper.sh, which starts the real host-agent CLI
 * (`serve --stdio`), which runs the real llama-server.
 *
 * - the default external host, configured the seed's way (SYNAPSE_SSH_DIR
 *   with config, key and known_hosts): start-all, status, stop-all;
 * - a host described by its row (address, user, key file, pinned key):
 *   test connection, start-all, the link dropping (the models show it, the
 *   servers keep running) and coming back (status asked again, same pids).
 */
import { mkdir, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { testDirs, type TestDirs } from "../../../../host-agent/test/harness/fixtures";
import { llamaServerBin } from "../../../../host-agent/test/harness/llama-server";
import { freePort } from "../../../../host-agent/test/harness/ports";
import { agentPids, installHostWrapper } from "../../../../host-agent/test/harness/ssh-wrapper";
import { disposeSshHost, startSshd, type SshdFixture } from "../../../../host-agent/test/harness/sshd";
import { tinyModel } from "../../../../host-agent/test/harness/tiny-model";
import type { Host } from "~/generated/prisma/client";
import { agentLogMover } from "../registry/log-move";
import { updateModel } from "../registry/models";
import { agentPortHolder } from "../registry/port-holder";
import { noAnswerText, RESTART_PORT_HELD_ADVICE } from "./start-outcome";
import { createEventBus, type EventBus } from "./events";
import { createFleet, type Fleet } from "./fleet";
import { createLinkPool, type LinkPool } from "./links";
import { memoryFigures } from "~/components/fleet/memory-figures";
import { sizeText } from "~/components/fleet/memory-size";
import { createLogger } from "~/server/log/logger";
import { hostUnreachable } from "~/shared/host-reach";
import { testDb, testLogger, type TestDb } from "./testing/db";
import { pidsRunning, portFree, TEST_SETTINGS, waitFor } from "./testing/fixture";

interface SshFleet {
  t: TestDb;
  /** The "Mac": its agent's state folder and model root. */
  remote: TestDirs;
  sshd: SshdFixture;
  sshDir: string;
  links: LinkPool;
  events: EventBus;
  fleet: Fleet;
  models: string[];
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A host described by its row (not the ssh folder): "mac-row", reaching the fixture's sshd with its key, its host key pinned. */
function rowHost(s: SshFleet): Promise<Host> {
  return s.t.db.host.create({
    data: {
      name: "mac-row",
      linkKind: "ssh",
      sshHost: "127.0.0.1",
      sshPort: s.sshd.port,
      sshUser: s.sshd.user,
      sshIdentityFile: path.join(s.sshDir, "id_ed25519"),
      hostKeyFingerprint: s.sshd.hostFingerprint(),
    },
  });
}

async function setup(): Promise<SshFleet> {
  const remote = await testDirs("synapse-fleet-ssh-");
  const wrapper = await installHostWrapper(remote, { SYNAPSE_HEALTH_INTERVAL_MS: "500" });
  const sshd = await startSshd({ forcedCommand: wrapper.path });
  // The seed's host-api/.ssh folder.
  const sshDir = path.join(remote.root, "host-api-ssh");
  await mkdir(sshDir, { recursive: true, mode: 0o700 });
  await writeFile(path.join(sshDir, "id_ed25519"), sshd.clientKey.privateKey, { mode: 0o600 });
  await writeFile(
    path.join(sshDir, "config"),
    ["Host mac-host", "    HostName 127.0.0.1", `    Port ${sshd.port}`, `    User ${sshd.user}`, "    IdentityFile id_ed25519", "    StrictHostKeyChecking no", ""].join("\n"),
  );
  await writeFile(path.join(sshDir, "known_hosts"), `${sshd.knownHostsLine()}\n`);

  const t = testDb("synapse-fleet-ssh-db-");
  await t.db.runtimeSettings.create({ data: TEST_SETTINGS });
  const log = testLogger("fleet-ssh");
  const links = createLinkPool({
    env: { SYNAPSE_MODEL_ROOTS: undefined, SYNAPSE_STATE_DIR: undefined, LLAMA_SERVER_BIN: undefined, SYNAPSE_SSH_DIR: sshDir, SYNAPSE_SSH_HOST_ALIAS: "mac-host" },
    log,
    ssh: { reconnect: { initialDelayMs: 100, maxDelayMs: 500 }, keepaliveIntervalMs: 1000, connectTimeoutMs: 10_000 },
    failedLinkRetryMs: 300,
  });
  const events = await createEventBus({ db: t.db, log });
  const fleet = createFleet({ db: t.db, links, events, log, appPort: 3000, reconcileIntervalMs: 0 });
  const s: SshFleet = { t, remote, sshd, sshDir, links, events, fleet, models: [] };
  cleanups.push(async () => {
    await fleet.shutdown({ stopServers: true, deadlineMs: 20_000 }).catch(() => []);
    await fleet.close();
    await links.close();
    await events.close();
    // Whatever is left is stopped by the host's own verb, through the wrapper.
    await disposeSshHost(sshd);
    const left = (await Promise.all(s.models.map((m) => pidsRunning(m)))).flat();
    for (const pid of left) process.kill(pid, "SIGKILL");
    await t.cleanup();
    await remote.cleanup();
    if (left.length) throw new Error(`processes left running: ${left.join(", ")}`);
  });
  return s;
}

async function addModels(s: SshFleet, host: Host, names: string[]) {
  const out = [];
  for (const name of names) {
    const file = await tinyModel(s.remote.modelRoot, `${name}.gguf`);
    s.models.push(file);
    out.push(await s.t.db.model.create({ data: { name, hostId: host.id, filePath: file, port: await freePort(), enabled: true } }));
  }
  return out;
}

describe("fleet over the real ssh link", () => {
  it("the default external host from the seed's ssh folder: start-all, status, stop-all", async () => {
    const s = await setup();
    // As ensureDefaultHost writes it with USE_EXTERNAL_SERVERS=true.
    const host = await s.t.db.host.create({ data: { name: "mac-host", linkKind: "ssh", sshHost: "mac-host" } });
    const models = await addModels(s, host, ["alpha", "beta", "gamma"]);
    await s.t.db.model.update({ where: { id: models[2]!.id }, data: { enabled: false } });

    const results = await s.fleet.startAll({ wait: true });
    expect(results.map((r) => [r.name, r.state, r.host, r.error])).toEqual([
      ["alpha", "ready", "mac-host", null],
      ["beta", "ready", "mac-host", null],
    ]);
    for (const [i, r] of results.entries()) expect(await pidsRunning(models[i]!.filePath)).toEqual([r.pid]);
    const status = await s.fleet.status();
    expect(status.map((v) => [v.name, v.state, v.link.kind, v.link.state])).toEqual([
      ["alpha", "ready", "ssh", "connected"],
      ["beta", "ready", "ssh", "connected"],
      ["gamma", "stopped", "ssh", "connected"],
    ]);
    // Agent events cross the wire: the state changes were recorded from them.
    expect((await s.t.db.event.findMany({ where: { modelId: models[0]!.id, kind: "state" }, orderBy: { id: "asc" } })).map((e) => e.state)).toEqual(["starting", "ready"]);
    const logs = await s.fleet.logs(models[0]!.id, 20);
    expect(logs.lines.length).toBeGreaterThan(0);

    const stopped = await s.fleet.stopAll();
    expect(stopped.map((r) => [r.name, r.state])).toEqual([
      ["alpha", "stopped"],
      ["beta", "stopped"],
    ]);
    for (const m of models) {
      expect(await pidsRunning(m.filePath)).toEqual([]);
      expect(await portFree(m.port)).toBe(true);
    }
  });


  it("a crash whose restart finds the host unreachable is restarted once the host is back, not left exited with nothing planned", async () => {
    const s = await setup();
    const host = await s.t.db.host.create({ data: { name: "mac-host", linkKind: "ssh", sshHost: "mac-host" } });
    const [model] = await addModels(s, host, ["alpha"]);
    const [started] = await s.fleet.startAll({ wait: true });
    expect(started!.state).toBe("ready");
    // The server crashes; the restart policy plans its restart 1 s on; the host goes away before it.
    process.kill(started!.pid!, "SIGKILL");
    await waitFor("the crash recorded with its restart planned", async () => {
      const v = (await s.fleet.status())[0]!;
      return v.state === "exited" && v.nextRestartAt !== null;
    }, 15_000, 10);
    await s.sshd.stop({ dropSessions: true });
    const planned = await waitFor("the restart tried, and planned again", async () => {
      const row = await s.t.db.serverState.findUnique({ where: { modelId: model!.id } });
      return row?.lastError && /mac-host/.test(row.lastError) && row.nextRestartAt ? row : null;
    }, 20_000, 50);
    expect(planned.observed).toBe("exited");
    const said = await s.t.db.event.findMany({ where: { modelId: model!.id, kind: "action" }, orderBy: { id: "asc" } });
    expect(said.map((e) => e.message)).toContainEqual(expect.stringMatching(/^alpha: its restart could not reach its host \(.+\); trying again every 5 s, and once the host is back$/));

    // Back: the restart is made, by its timer or the reconcile loop.
    await s.sshd.start();
    const back = await waitFor("restarted once the host is back", async () => {
      await s.fleet.reconcile(host.id);
      const v = (await s.fleet.status())[0]!;
      return v.state === "ready" ? v : null;
    }, 30_000, 200);
    expect(back.pid).not.toBe(started!.pid);
    expect(await pidsRunning(model!.filePath)).toEqual([back.pid]);
  });

  it("a stopped model renamed: its log moves on the host through the agent, and logs under the new name read the old run", async () => {
    const s = await setup();
    const host = await s.t.db.host.create({ data: { name: "mac-host", linkKind: "ssh", sshHost: "mac-host" } });
    const [model] = await addModels(s, host, ["alpha"]);
    expect((await s.fleet.start(model!.id)).state).toBe("ready");
    expect((await s.fleet.stop(model!.id)).state).toBe("stopped");
    const saved = await updateModel(s.t.db, { id: model!.id, name: "alpha-renamed" }, { appPort: 3000, moveLogs: agentLogMover(s.links), events: s.events });
    const logPath = path.join(s.remote.stateDir, "logs", "alpha-renamed.log");
    expect(saved.logMove).toEqual({ moved: true, note: `its log moved to ${logPath} on host mac-host` });
    const logs = await s.fleet.logs(model!.id, 5000);
    expect(logs).toMatchObject({ name: "alpha-renamed", logPath });
    expect(logs.lines.some((l) => l.startsWith("=== synapse host-agent: starting alpha at "))).toBe(true);
    expect(logs.lines.some((l) => /listening on http:\/\/127\.0\.0\.1:\d+/.test(l))).toBe(true);
  });

  it("a port another program holds on the host: saving it warns, naming the holder, and a restart onto it stops nothing", async () => {
    const s = await setup();
    const host = await s.t.db.host.create({ data: { name: "mac-host", linkKind: "ssh", sshHost: "mac-host" } });
    const [model] = await addModels(s, host, ["alpha"]);
    const started = await s.fleet.start(model!.id);
    expect(started.state).toBe("ready");
    // The "Mac" is this machine's loopback: a listener here holds the port there.
    const held = net.createServer();
    await new Promise<void>((resolve) => held.listen(0, "127.0.0.1", resolve));
    try {
      const port = (held.address() as net.AddressInfo).port;
      const saved = await updateModel(s.t.db, { id: model!.id, port }, { appPort: 3000, events: s.events, portHolder: agentPortHolder(s.links) });
      expect(saved.portWarning).toBe(`port ${port} is held by pid ${process.pid} (node) now: alpha cannot start on it until that program lets it go; stop it, or choose another port`);

      const refused = await s.fleet.restart(model!.id, { wait: true });
      expect(refused).toMatchObject({ state: "ready", pid: started.pid, port: model!.port });
      expect(refused.error).toBe(`cannot start alpha: port ${port} is held by pid ${process.pid} (node); alpha keeps running on port ${model!.port} (nothing was stopped); ${RESTART_PORT_HELD_ADVICE}`);
      expect(await pidsRunning(model!.filePath)).toEqual([started.pid]);
    } finally {
      await new Promise<void>((resolve) => held.close(() => resolve()));
    }
    // Free again: the restart moves it.
    const restarted = await s.fleet.restart(model!.id, { wait: true });
    expect([restarted.state, restarted.error]).toEqual(["ready", null]);
    expect(restarted.pid).not.toBe(started.pid);
  });

  it("a host key refused at first is accepted once known_hosts is fixed, without restarting the app", async () => {
    const s = await setup();
    // known_hosts pins another key for the host (say, the Mac's key before a reinstall).
    const otherKey = s.sshd.clientKey.publicKey.split(/\s+/).slice(0, 2).join(" ");
    await writeFile(path.join(s.sshDir, "known_hosts"), `[127.0.0.1]:${s.sshd.port} ${otherKey}\n`);
    const host = await s.t.db.host.create({ data: { name: "mac-host", linkKind: "ssh", sshHost: "mac-host" } });
    await addModels(s, host, ["alpha"]);
    const refused = await s.fleet.startAll({ wait: true });
    expect(refused[0]!.state).not.toBe("ready");
    const failed = await waitFor("the link failed on the host key", async () => {
      const v = (await s.fleet.status())[0]!;
      return v.link.state === "failed" ? v : null;
    }, 15_000);
    expect(failed.link.error).toMatch(/host key/i);

    // The user pins the right key; the next reconcile makes the link anew from the folder.
    await writeFile(path.join(s.sshDir, "known_hosts"), `${s.sshd.knownHostsLine()}\n`);
    await waitFor("the link connected with the fixed known_hosts", async () => {
      await s.fleet.reconcile(host.id);
      return (await s.fleet.status())[0]!.link.state === "connected";
    }, 15_000);
    const results = await s.fleet.startAll({ wait: true });
    expect(results.map((r) => r.state)).toEqual(["ready"]);
  });
  it("a host from its row: test connection, start-all, the link drops (servers keep running) and comes back", async () => {
    const s = await setup();
    const host = await rowHost(s);
    const test = await s.links.testConnection(host);
    expect(test).toMatchObject({ host: "mac-row", linkKind: "ssh", hostKeyFingerprint: s.sshd.hostFingerprint(), hostKeyPinned: true });
    expect(test.hello.llamaServer.path).toBe(llamaServerBin());
    expect(test.hello.modelRoots).toEqual([s.remote.modelRoot]);
    // No pin yet: the key is seen (trust on first use for the test only), not pinned.
    const unpinned = await s.links.testConnection({ ...host, hostKeyFingerprint: null });
    expect(unpinned).toMatchObject({ hostKeyFingerprint: s.sshd.hostFingerprint(), hostKeyPinned: false });
    // A wrong pin is refused with the fingerprint seen.
    await expect(s.links.testConnection({ ...host, hostKeyFingerprint: `SHA256:${"A".repeat(43)}` })).rejects.toMatchObject({
      code: "UNAVAILABLE",
      data: { fingerprint: s.sshd.hostFingerprint() },
      message: expect.stringContaining(`presented host key ${s.sshd.hostFingerprint()}, which does not match the pinned key`),
      issues: [{ path: "hostKeyFingerprint", message: `the host presented ${s.sshd.hostFingerprint()}` }],
    });

    const models = await addModels(s, host, ["alpha", "beta"]);
    const results = await s.fleet.startAll({ wait: true });
    expect(results.map((r) => r.state)).toEqual(["ready", "ready"]);

    // The host goes away: its models show the link state and the error; the servers live on.
    await s.sshd.stop({ dropSessions: true });
    const down = await waitFor("status shows the link down", async () => {
      const v = await s.fleet.status();
      return v.every((m) => m.link.state === "disconnected" && m.link.error) ? v : null;
    }, 15_000);
    expect(down[0]!.link.error).toMatch(/mac-row/);
    expect(down.map((v) => [v.state, v.pid])).toEqual(results.map((r) => ["ready", r.pid]));
    for (const [i, r] of results.entries()) expect(await pidsRunning(models[i]!.filePath)).toEqual([r.pid]);
    // Decisions fail fast for that host instead of hanging.
    const t0 = Date.now();
    const attempt = await s.fleet.start(models[0]!.id, { wait: true });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(attempt.error).toMatch(/unreachable|not connected|mac-row/);

    // Back: the link reconnects, status is asked again, the same processes are recorded.
    await s.sshd.start();
    await waitFor("link connected again", async () => (await s.fleet.status()).every((m) => m.link.state === "connected"), 20_000);
    await s.fleet.reconcile(host.id);
    const back = await s.fleet.status();
    expect(back.map((v) => [v.name, v.state, v.pid])).toEqual(results.map((r) => [r.name, "ready", r.pid]));
    const hostEvents = await s.t.db.event.findMany({ where: { kind: "host", hostId: host.id }, orderBy: { id: "asc" } });
    expect(hostEvents.map((e) => e.state)).toEqual(expect.arrayContaining(["connected", "disconnected"]));
  });
});

describe("a host that goes away (a trial: the row stayed a green READY, a stop said it failed and happened later)", () => {
  it("status keeps the last known state with its uptime frozen; a stop is recorded, said pending, and made once the host is back, with its own cause and no stale last error", async () => {
    const s = await setup();
    const host = await rowHost(s);
    const [alpha, beta, gamma] = await addModels(s, host, ["alpha", "beta", "gamma"]);
    await s.t.db.model.update({ where: { id: gamma!.id }, data: { enabled: false } });
    const results = await s.fleet.startAll({ wait: true });
    expect(results.map((r) => [r.name, r.state])).toEqual([["alpha", "ready"], ["beta", "ready"]]);

    await s.sshd.stop({ dropSessions: true });
    const lostBy = Date.now();
    const down = await waitFor("status shows the host unreachable", async () => {
      const v = await s.fleet.status();
      return v.every((m) => m.link.state === "disconnected" && m.link.unreachableSince) ? v : null;
    }, 15_000);
    const alphaDown = down.find((v) => v.name === "alpha")!;
    expect(alphaDown.state).toBe("ready");
    expect(Date.parse(alphaDown.link.unreachableSince!)).toBeLessThanOrEqual(lostBy + 15_000);
    expect(alphaDown.link.error).toMatch(/mac-row/);
    // The Hosts page's card (hosts.list's link) says why too, not only "link disconnected".
    expect(s.links.status(host.id)).toMatchObject({ state: expect.not.stringMatching(/^connected$/), error: expect.stringMatching(/mac-row/) });
    // Uptime is the one at the last contact: not counted on while nothing is known.
    await new Promise((r) => setTimeout(r, 1100));
    expect((await s.fleet.status()).find((v) => v.name === "alpha")!.uptimeMs).toBe(alphaDown.uptimeMs);

    // A start that cannot reach the host notes why on the row; a stop is recorded and made later.
    const started = await s.fleet.start(gamma!.id, { wait: true });
    expect(started.error).toMatch(/mac-row/);
    const stopAlpha = await s.fleet.stop(alpha!.id);
    expect(stopAlpha).toMatchObject({ name: "alpha", state: "ready", error: null, stopPending: { host: "mac-row", reason: expect.stringMatching(/mac-row/) } });
    // An idle unload decided during the outage.
    expect((await s.fleet.stop(beta!.id, { cause: "idle" })).stopPending).toBeDefined();
    // Said as recorded, not as done (a trial's Activity read "unloaded after its idle time" while it ran on).
    const lastAction = async () => (await s.t.db.event.findMany({ where: { modelId: beta!.id, kind: "action" }, orderBy: { id: "asc" } })).at(-1)?.message;
    await expect.poll(lastAction, { timeout: 5000 }).toBe("beta: stop (unloaded after its idle time): recorded, not yet made: host mac-row cannot be reached now; it is stopped when the host is back");
    expect((await s.fleet.stop(gamma!.id)).error).toBeNull();
    const recorded = await s.t.db.serverState.findMany({ where: { modelId: { in: [alpha!.id, beta!.id] } } });
    expect(recorded.map((r) => [r.desired, r.lastError])).toEqual([["stopped", null], ["stopped", null]]);

    // Back: the stops are made, each with its own cause; no last error says the host is unreachable.
    await s.sshd.start();
    const after = await waitFor("the recorded stops made once the host is back", async () => {
      await s.fleet.reconcile(host.id);
      const v = await s.fleet.status();
      return v.every((m) => m.state === "stopped" && m.link.state === "connected") ? v : null;
    }, 30_000, 200);
    expect(after.map((v) => [v.name, v.cause, v.lastError, v.link.unreachableSince])).toEqual([
      ["alpha", "requested", null, null],
      ["beta", "idle", null, null],
      ["gamma", null, null, null],
    ]);
    const said = await s.t.db.event.findMany({ where: { modelId: beta!.id, kind: "state", state: "stopped" }, orderBy: { id: "asc" } });
    expect(said.at(-1)?.message).not.toMatch(/on request/);
    for (const r of results) expect(await pidsRunning(s.models.find((m) => m.includes(r.name))!)).toEqual([]);
  });

  it("a start the agent does not answer while the link stays up is the start's own failure, not an unreachable host: a request's start leaves the model wanted, failed with what happened", async () => {
    const s = await setup();
    const host = await rowHost(s);
    const [alpha] = await addModels(s, host, ["alpha"]);
    // The call's deadline is the readiness deadline, the stop grace and 15 s: 17 s here.
    await s.t.db.model.update({ where: { id: alpha!.id }, data: { loadPolicy: "on-demand", readinessDeadlineMs: 1000 } });
    await s.t.db.runtimeSettings.update({ where: { id: 1 }, data: { stopGraceMs: 1000 } });
    const link = await s.links.get(host);
    await waitFor("the link connected", async () => link.state === "connected", 15_000, 20);
    // The pass that follows the connection (status, the host's memory) answered before the agent is frozen.
    await s.fleet.reconcile(host.id);
    const agent = await agentPids(await s.sshd.sessionPids());
    expect(agent.length).toBeGreaterThan(0);
    // The agent stops answering (stuck); sshd, and so the link and its keepalives, carry on.
    for (const pid of agent) process.kill(pid, "SIGSTOP");
    let result;
    let row;
    let said;
    try {
      result = await s.fleet.start(alpha!.id, { wait: true, trigger: "request" });
      expect(link.state).toBe("connected");
      // Read while the agent is still frozen: once it goes on, it runs the start and the row rightly shows that.
      row = await s.t.db.serverState.findUnique({ where: { modelId: alpha!.id } });
      said = await s.t.db.event.findMany({ where: { modelId: alpha!.id }, orderBy: { id: "asc" } });
    } finally {
      for (const pid of agent) process.kill(pid, "SIGCONT");
    }
    // The old code: unreachable, and the request's start left the model not wanted ("it is not started when the host is back").
    expect(result.unreachable).toBeUndefined();
    expect(result).toMatchObject({ state: "failed", error: noAnswerText("alpha", "mac-row", 17_000, 1000) });
    expect(row).toMatchObject({ desired: "running", observed: "failed", lastError: result.error });
    expect(said!.map((e) => e.message)).not.toContainEqual(expect.stringMatching(/could not be reached/));
    expect(said!.map((e) => e.message)).toContainEqual(result.error);
    // The agent, going on, reads the start the app gave up on and runs it; the error said "should the server come up
    // meanwhile, its state shows it": the model is still wanted, so the fleet takes the server up and it serves.
    // Waiting for it here also lets the teardown's stops find the server (a CI run's teardown came first, and the
    // server it spawned was left).
    await waitFor("the agent's late start of alpha", async () => (await link.call("status", { ids: ["alpha"] }).catch(() => []))[0]?.pid, 30_000, 100);
    await waitFor("alpha shown ready after the late start", async () => {
      await s.fleet.reconcile(host.id);
      return (await s.fleet.status()).find((m) => m.name === "alpha")?.state === "ready";
    }, 30_000, 200);
  }, 90_000);

  it("Test connection's own link logs as a connection test, apart from the host's link, and never says it will reconnect", async () => {
    const s = await setup();
    const host = await rowHost(s);
    const records: { component: string; msg: string }[] = [];
    const pool = createLinkPool({
      env: { SYNAPSE_MODEL_ROOTS: undefined, SYNAPSE_STATE_DIR: undefined, LLAMA_SERVER_BIN: undefined, SYNAPSE_SSH_DIR: s.sshDir, SYNAPSE_SSH_HOST_ALIAS: "mac-host" },
      log: createLogger("fleet", "debug", (line) => records.push(JSON.parse(line) as { component: string; msg: string })),
    });
    cleanups.push(() => pool.close());
    expect((await pool.testConnection(host)).host).toBe("mac-row");
    await s.sshd.stop({ dropSessions: true });
    await expect(pool.testConnection(host)).rejects.toMatchObject({ message: expect.stringContaining(`cannot reach the agent on host mac-row`) });
    console.log(`connection tests logged: ${JSON.stringify(records)}`);
    // The old code: "link down; will reconnect" (retryInMs 60000) under fleet.link.mac-row, which read as a second link of the host.
    expect(records.filter((r) => /reconnect/.test(r.msg) && !/not reconnecting/.test(r.msg))).toEqual([]);
    expect(records.filter((r) => r.component === "fleet.link.mac-row")).toEqual([]);
    expect(new Set(records.map((r) => r.component))).toEqual(new Set(["fleet.connection-test.mac-row"]));
    expect(records.map((r) => r.msg)).toEqual(expect.arrayContaining(["link connected", "one-shot link ended; not reconnecting"]));
  }, 60_000);

  it("a Restart while the host cannot be reached stops nothing: it is recorded, said so, and made once the host is back (a new process); the memory bar says its figures are the last known", async () => {
    const s = await setup();
    const host = await rowHost(s);
    const [alpha] = await addModels(s, host, ["alpha"]);
    const [started] = await s.fleet.startAll({ wait: true });
    expect(started!.state).toBe("ready");
    const [barUp] = await s.fleet.memoryOverview();
    expect(memoryFigures(barUp!, (b) => sizeText(b, 1)).text).toMatch(/^\S+ MiB estimated for running servers/);

    await s.sshd.stop({ dropSessions: true });
    await waitFor("status shows the host unreachable", async () => (await s.fleet.status()).every((m) => m.link.state === "disconnected" && m.link.unreachableSince), 15_000);
    // The memory bar: what runs there is the last known (the old code: "estimated for running servers", and no link).
    const [bar] = await s.fleet.memoryOverview();
    expect(hostUnreachable(bar!.link)).toBe(true);
    expect(memoryFigures(bar!, (b) => sizeText(b, 1)).text).toMatch(/^host mac-row cannot be reached: \S+ MiB estimated for the servers running when last known/);

    const r = await s.fleet.restart(alpha!.id, { wait: true });
    // The old code: the stop went pending, then the start failed "host 'mac-row' is unreachable", said as an error.
    expect(r).toMatchObject({ name: "alpha", state: "ready", pid: started!.pid, error: null, restartPending: { host: "mac-row", reason: expect.stringMatching(/mac-row/) } });
    expect(r.unreachable).toBeUndefined();
    expect((await s.fleet.status())[0]).toMatchObject({ state: "ready", desired: "running", restartPending: true, lastError: null });
    const said = async () => (await s.t.db.event.findMany({ where: { modelId: alpha!.id, kind: "action" }, orderBy: { id: "asc" } })).map((e) => e.message);
    await expect.poll(async () => (await said()).at(-1), { timeout: 5000 }).toBe("alpha: restart requested: recorded, not yet made: host mac-row cannot be reached now; it is restarted when the host is back");
    // Nothing was stopped: the server runs on.
    expect(await pidsRunning(alpha!.filePath)).toEqual([started!.pid]);

    await s.sshd.start();
    const back = await waitFor("the recorded restart made once the host is back", async () => {
      await s.fleet.reconcile(host.id);
      const v = (await s.fleet.status())[0]!;
      return v.state === "ready" && v.pid !== started!.pid && v.link.state === "connected" ? v : null;
    }, 60_000, 200);
    expect(back.restartPending).toBe(false);
    expect(await pidsRunning(alpha!.filePath)).toEqual([back.pid]);
    expect(await said()).toContain("alpha: restarting now that host mac-row is back (the restart was recorded while it could not be reached)");
    const stops = await s.t.db.event.findMany({ where: { modelId: alpha!.id, kind: "state", state: "stopped" }, orderBy: { id: "asc" } });
    expect(stops.at(-1)?.message).toMatch(/restart/);
    // Made once: the passes after it leave the new process alone.
    await s.fleet.reconcile(host.id);
    expect((await s.fleet.status())[0]!.pid).toBe(back.pid);
  }, 120_000);
});
