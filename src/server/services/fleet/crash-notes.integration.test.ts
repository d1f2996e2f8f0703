/**
 * What the app decides after a run ends on its own (a crash) goes into the server's log on the host, after
 * the run's last line: the restart and when it comes, or that it is not restarted (agents with log-note). A
 * user who reads the log file alone (`tail -F`, a copy sent with a bug report) sees why a new run follows,
 * or why none does. With an agent older than log-note the app's events alone say it, and the hosts page
 * says which host to update.
 */
import { readFile, truncate } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AGENT_LINE_PREFIX } from "../../../../host-agent/src/shared/run-header";
import { fleetFixture, statusOf, waitFor, type FleetFixture } from "./testing/fixture";
import type { HostLink } from "synapse-host-agent/link";
import { standInOlderAgents, viewLinks } from "./testing/stand-in-older-agent";

let fx: FleetFixture | null = null;
afterEach(async () => {
  const f = fx;
  fx = null;
  await f?.dispose();
});

/** The agent's own lines in `name`'s log (headers, run ends, the app's notes), their times cut out. */
async function agentLines(f: FleetFixture, name: string): Promise<string[]> {
  const text = await readFile(path.join(f.dirs.stateDir, "logs", `${name}.log`), "utf8");
  return text
    .split("\n")
    .filter((l) => l.startsWith(AGENT_LINE_PREFIX))
    .map((l) => l.replace(/ at \d{4}-\d\d-\d\dT[\d:.]+Z: /, " at T: ").replace(/^(=== synapse host-agent: starting \S+ at T: ).*$/, "$1…"));
}

/** Kills alpha's server `times` times, each time once it is ready again; returns once the last kill is recorded. */
async function crashLoop(f: FleetFixture, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    const s = await waitFor(`alpha ready (run ${i + 1})`, async () => {
      const st = await statusOf(f, "alpha");
      return st.state === "ready" && st.pid !== null ? st : null;
    }, 20_000);
    process.kill(s.pid!, "SIGKILL");
    await waitFor(`alpha's crash ${i + 1} recorded`, async () => ((await statusOf(f, "alpha")).pid !== s.pid ? true : null), 10_000);
  }
}

describe("the app's decision after a crash, in the server's log", () => {
  it("each crash's run end is followed by the restart and when it comes; the last crash by 'failed: … not restarting'; then no new run", async () => {
    const f = (fx = await fleetFixture({ fleet: { restartPolicy: { baseDelayMs: 50, maxDelayMs: 200, maxCrashes: 3 } } }));
    await f.addModel("alpha");
    await f.fleet.startAll({ wait: true });
    await f.fleet.reconcile(f.host.id); // the agent's hello (its features) is read
    await crashLoop(f, 3);
    await waitFor("alpha failed", async () => ((await statusOf(f, "alpha")).state === "failed" ? true : null), 10_000);
    const lines = await waitFor("the last note written", async () => {
      const l = await agentLines(f, "alpha");
      return l.at(-1)?.includes("note from the app") ? l : null;
    }, 5000);
    const header = "=== synapse host-agent: starting alpha at T: …";
    const ended = "=== synapse host-agent: ended alpha at T: exited, cause crash: killed by SIGKILL ===";
    const note = (text: string) => `=== synapse host-agent: note from the app on alpha at T: ${text} ===`;
    const restarting = (n: number) => expect.stringMatching(new RegExp(`^=== synapse host-agent: note from the app on alpha at T: .*killed by SIGKILL.*; restarting in 0\\.\\d s \\(restart ${n} of at most 2 within 10 minutes\\) ===$`));
    expect(lines).toEqual([header, ended, restarting(1), header, ended, restarting(2), header, ended, note("failed: crashed 3 times within 10 minutes; not restarting it again until it is started by hand")]);
  });

  it("a stop while the restart after a crash is pending: the log's last line says the restart is cancelled, not that it is coming", async () => {
    const f = (fx = await fleetFixture({ fleet: { restartPolicy: { baseDelayMs: 30_000, maxDelayMs: 30_000 } } }));
    const m = await f.addModel("alpha");
    await f.fleet.startAll({ wait: true });
    await f.fleet.reconcile(f.host.id);
    await crashLoop(f, 1);
    await waitFor("the restart's note", async () => ((await agentLines(f, "alpha")).at(-1)?.includes("restarting in 30.0 s") ? true : null), 5000);
    const stopped = await f.fleet.stop(m.id);
    expect(stopped).toMatchObject({ state: "stopped", restartCancelled: expect.anything() });
    const lines = await waitFor("the cancellation's note", async () => {
      const l = await agentLines(f, "alpha");
      return l.at(-1)?.includes("cancelled") ? l : null;
    }, 5000);
    expect(lines.slice(-2)).toEqual([
      expect.stringMatching(/: killed by SIGKILL; restarting in 30\.0 s \(restart 1 of at most 4 within 10 minutes\) ===$/),
      "=== synapse host-agent: note from the app on alpha at T: its restart is cancelled: stopped on request; it stays stopped ===",
    ]);
  });

  it("with an agent older than log-note: the restart happens, the log holds no note and the agent is not asked for one; the hosts page says which host to update", async () => {
    const asked: string[] = [];
    const f = (fx = await fleetFixture({
      fleet: { restartPolicy: { baseDelayMs: 50, maxDelayMs: 200 } },
      viewLinks: (pool) =>
        viewLinks(standInOlderAgents(pool), (link) =>
          Object.assign(Object.create(link) as HostLink, {
            call: (method: string, params: unknown, options?: unknown) => {
              asked.push(method);
              return (link.call as (m: string, p: unknown, o?: unknown) => Promise<unknown>)(method, params, options);
            },
          }),
        ),
    }));
    await f.addModel("alpha");
    await f.fleet.startAll({ wait: true });
    await f.fleet.reconcile(f.host.id);
    await crashLoop(f, 1);
    await waitFor("alpha restarted", async () => ((await statusOf(f, "alpha")).state === "ready" ? true : null), 20_000);
    expect((await agentLines(f, "alpha")).map((l) => l.replace(/^=== synapse host-agent: (\S+).*$/, "$1"))).toEqual(["starting", "ended", "starting"]);
    expect(asked).not.toContain("logNote");
    expect(f.fleet.agent(f.host.id)?.advice).toMatch(/log-note \(the app's decision after a crash \(the restart and when it comes, or why there is none\) is in its events only, not in the server's log on the host\)/);
  });
  it("a crash whose restarts then fail while loading: one note after each run's end, none twice, the last one 'failed'; the events read 'exited' until the app gives up", async () => {
    const f = (fx = await fleetFixture({ fleet: { restartPolicy: { baseDelayMs: 50, maxDelayMs: 200, maxCrashes: 3 } } }));
    const m = await f.addModel("alpha");
    await f.fleet.startAll({ wait: true });
    await f.fleet.reconcile(f.host.id);
    // The file is damaged after the run loaded it: each restart exits while loading.
    await truncate(m.filePath, 200_000);
    await crashLoop(f, 1);
    await waitFor("alpha failed", async () => ((await statusOf(f, "alpha")).state === "failed" ? true : null), 30_000);
    const lines = await waitFor("the last note written", async () => {
      const l = await agentLines(f, "alpha");
      return l.at(-1)?.includes("note from the app on alpha at T: failed") ? l : null;
    }, 5000);
    await new Promise((r) => setTimeout(r, 1000)); // a second note would come by now
    const marks = (await agentLines(f, "alpha")).map((l) => l.replace(/^=== synapse host-agent: (\S+).*$/, "$1"));
    expect(marks, lines.join("\n")).toEqual(["starting", "ended", "note", "starting", "ended", "note", "starting", "ended", "note"]);
    // A restart that exited while loading is the crash it is (state exited, as the status shows it), not "failed"
    // just before "restarting in …": failed is said once, when the app gives up.
    const states = (await f.t.db.event.findMany({ where: { modelId: m.id, kind: "state" }, orderBy: { id: "asc" } })).map((e) => `${e.state}: ${e.message}`);
    expect(states.filter((t) => /^(exited|failed): /.test(t))).toEqual([
      "exited: alpha: exited (crashed: killed by SIGKILL)",
      expect.stringMatching(/^exited: alpha: exited \(did not load: exited with code 1 while loading/),
      expect.stringMatching(/^exited: alpha: exited \(did not load: exited with code 1 while loading/),
      "failed: alpha: failed (crashed 3 times within 10 minutes; not restarting it again until it is started by hand)",
    ]);
  });

  it("the restart's number in the note and in the app's events agree: a crash after the window has passed is restart 1 of the window in both", async () => {
    const f = (fx = await fleetFixture({ fleet: { restartPolicy: { baseDelayMs: 50, maxDelayMs: 200, windowMs: 2000 } } }));
    const m = await f.addModel("alpha");
    await f.fleet.startAll({ wait: true });
    await f.fleet.reconcile(f.host.id);
    await crashLoop(f, 1);
    await waitFor("alpha ready again", async () => ((await statusOf(f, "alpha")).state === "ready" ? true : null), 20_000);
    await new Promise((r) => setTimeout(r, 2500)); // the first crash leaves the window
    await crashLoop(f, 1);
    await waitFor("alpha ready again", async () => ((await statusOf(f, "alpha")).state === "ready" ? true : null), 20_000);
    const actions = (await f.t.db.event.findMany({ where: { modelId: m.id, kind: "action" }, orderBy: { id: "asc" } })).map((e) => e.message).filter((t) => /restart/.test(t));
    // The decision (as in the log's note) and the restart's start: not "restart 1 of at most 4", then "restart 2".
    expect(actions.slice(-2), actions.join("\n")).toEqual([
      expect.stringMatching(/^alpha: killed by SIGKILL; restarting in 0\.\d s \(restart 1 of at most 4 within 2 s\)$/),
      "alpha: restarting after a crash (2 restarts since it was last started by hand)",
    ]);
  });
});
