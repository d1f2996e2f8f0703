/**
 * Each run's last line in its server's log says how the run ended (run-header.ts runFooter): a user who reads
 * the log file alone (`tail -F`, a copy sent with a bug report) sees where a run stopped, its state, its typed
 * cause and the reason, after the server's own last lines, and so does the live log. The real llama-server
 * for a stop and a crash; the scripted stand-in for an exit while loading (a real server will not fail to
 * load on demand), whose failure text must still come from the server's own line, not from this one.
 */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { agentTestBed } from "../../test/harness/agent-test-bed.ts";
import { AgentError } from "../protocol.ts";
import { errorHeadline } from "../shared/error-text.ts";
import { RUN_FOOTER_PREFIX } from "../shared/run-header.ts";
import { agentOptions, eventRecorder, specFor, stateOf, untilListening } from "../../test/harness/fixtures.ts";
import { llamaServerBin } from "../../test/harness/llama-server.ts";
import { freePort } from "../../test/harness/ports.ts";
import { standIns } from "../../test/harness/stand-ins/index.ts";

const bed = agentTestBed();

const fileLines = async (logPath: string) => (await readFile(logPath, "utf8")).split("\n").filter((l) => l !== "");
const isFooter = (l: string) => l.startsWith(RUN_FOOTER_PREFIX);

describe("a run's last line in its log", () => {
  it("a stop and a crash of the real llama-server each end their run in the file and in the live log, after the server's own lines", async () => {
    const agent = bed.pool.make(agentOptions(bed.dirs, llamaServerBin()));
    const rec = eventRecorder(agent);
    const live = (id: string) => rec.events.flatMap((e) => (e.kind === "log" && e.id === id ? [e.line] : []));

    const asked = await agent.call("start", { spec: specFor("asked", bed.model, await freePort()) });
    // Its own shutdown lines are checked below: the stop waits until llama-server handles SIGTERM (untilListening).
    await untilListening(agent, "asked");
    const stopped = await agent.call("stop", { id: "asked" });
    expect(stopped).toMatchObject({ state: "stopped", cause: "requested" });
    let lines = await fileLines(asked.logPath!);
    expect(lines.at(-1)).toMatch(/^=== synapse host-agent: ended asked at \d{4}-\d\d-\d\dT[\d:.]+Z: stopped, cause requested: stopped on request ===$/);
    expect(lines.filter(isFooter)).toHaveLength(1);
    // The server's own last line (it logs its shutdown) comes before it.
    expect(lines.at(-2)).not.toMatch(/^===/);
    // The run's log watch sends its last lines as it finishes, after the stop's answer: awaited, within a deadline.
    await expect.poll(() => live("asked").at(-1), { timeout: 5000, interval: 20 }).toBe(lines.at(-1));
    expect((await agent.call("logs", { id: "asked", lines: 5 })).lines.at(-1)).toBe(lines.at(-1));

    const victim = await agent.call("start", { spec: specFor("victim", bed.model, await freePort()) });
    process.kill(victim.pid!, "SIGKILL");
    const exited = stateOf(await rec.waitFor((e) => stateOf(e)?.id === "victim" && stateOf(e)?.state === "exited", 5000))!;
    expect(exited.cause).toBe("crash");
    lines = await fileLines(victim.logPath!);
    expect(lines.at(-1)).toMatch(/^=== synapse host-agent: ended victim at \S+: exited, cause crash: killed by SIGKILL ===$/);
    await agent.call("logs", { id: "victim", lines: 5 });
    await expect.poll(() => live("victim").at(-1), { timeout: 5000, interval: 20 }).toBe(lines.at(-1));
    // Its evidence is still the server's own lines.
    expect(exited.logTail.some(isFooter)).toBe(false);

    // Started again: the new run begins after the last run's end, and ends with a line of its own.
    const again = await agent.call("start", { spec: specFor("victim", bed.model, victim.port!) });
    await agent.call("stop", { id: "victim" });
    lines = await fileLines(again.logPath!);
    const marks = lines.filter((l) => l.startsWith("=== synapse host-agent: ")).map((l) => (isFooter(l) ? "ended" : "starting"));
    expect(marks).toEqual(["starting", "ended", "starting", "ended"]);
  });

  it("a server that ended while no agent watched it: the next agent's adoption ends its run in the log, once", async () => {
    const starter = bed.pool.make(agentOptions(bed.dirs, llamaServerBin()));
    const s = await starter.call("start", { spec: specFor("unwatched", bed.model, await freePort()) });
    starter.close(); // the server runs on, as after the agent (or the app) exits
    process.kill(s.pid!, "SIGKILL");
    const alive = () => {
      try {
        process.kill(s.pid!, 0);
        return true;
      } catch {
        return false;
      }
    };
    await expect.poll(alive, { timeout: 5000, interval: 20 }).toBe(false);
    const next = bed.pool.make(agentOptions(bed.dirs, llamaServerBin()));
    await next.ready;
    const lines = await fileLines(s.logPath!);
    expect(lines.at(-1)).toMatch(new RegExp(`^=== synapse host-agent: ended unwatched at \\S+: exited: ended while no agent watched it: pid ${s.pid} is no longer running \\(seen when an agent started; how it ended is not known\\) ===$`));
    expect(lines.filter(isFooter)).toHaveLength(1);
  });

  it("an exit while loading ends the run in the log, and the failure's text still names the server's own error line", async () => {
    const agent = bed.pool.make(agentOptions(bed.dirs, standIns.exitsWhileLoading));
    const err = await agent.call("start", { spec: specFor("doomed", bed.model, await freePort()) }).then(
      () => null,
      (e: unknown) => e as AgentError,
    );
    expect(err).toBeInstanceOf(AgentError);
    const status = (await agent.call("status", { ids: ["doomed"] }))[0]!;
    const lines = await fileLines(status.logPath!);
    expect(lines.at(-1)).toMatch(/^=== synapse host-agent: ended doomed at \S+: failed, cause crash: exited with code 3 while loading ===$/);
    // The tail the failure carries is the server's; its headline is the server's reason, not the agent's line.
    expect(status.logTail.some(isFooter)).toBe(false);
    expect(errorHeadline(err!.message)).toMatch(/tensor data is not within file bounds/);
  });

  it("the app's note (logNote) goes after the run's end, in the file and live, once; in the server's turn; refused for a server with no log and for a text too long", async () => {
    const agent = bed.pool.make(agentOptions(bed.dirs, llamaServerBin()));
    const rec = eventRecorder(agent);
    const live = (id: string) => rec.events.flatMap((e) => (e.kind === "log" && e.id === id ? [e.line] : []));
    const s = await agent.call("start", { spec: specFor("noted", bed.model, await freePort()) });
    process.kill(s.pid!, "SIGKILL");
    await rec.waitFor((e) => stateOf(e)?.id === "noted" && stateOf(e)?.state === "exited", 5000);
    // At once, while the run's log watch may still be sending its last lines; a line break in the text is a space.
    const noted = await agent.call("logNote", { id: "noted", text: "exited; restarting in 1.0 s\n(restart 1 of at most 4 within 10 minutes)" });
    expect(noted.line).toMatch(/^=== synapse host-agent: note from the app on noted at \S+: exited; restarting in 1\.0 s \(restart 1 of at most 4 within 10 minutes\) ===$/);
    let lines = await fileLines(s.logPath!);
    expect(lines.slice(-2)).toEqual([expect.stringMatching(/^=== synapse host-agent: ended noted at \S+: exited, cause crash: killed by SIGKILL ===$/), noted.line]);
    await agent.call("logs", { id: "noted", lines: 5 });
    expect(live("noted").slice(-2)).toEqual(lines.slice(-2));
    expect(live("noted").filter((l) => l === noted.line)).toHaveLength(1);
    expect((await agent.call("logs", { id: "noted", lines: 2 })).lines).toEqual(lines.slice(-2));

    // A start asked right after a note comes after it in the log; the note never lands inside the new run.
    const note2 = agent.call("logNote", { id: "noted", text: "second note" });
    const again = agent.call("start", { spec: specFor("noted", bed.model, s.port!) });
    await Promise.all([note2, again]);
    lines = await fileLines(s.logPath!);
    const marks = lines.filter((l) => l.startsWith("=== synapse host-agent: ")).map((l) => l.replace(/^=== synapse host-agent: (\S+).*$/, "$1"));
    expect(marks).toEqual(["starting", "ended", "note", "note", "starting"]);

    // A note asked while a start loads waits for the start's turn: it comes after the run's lines up to ready,
    // not among its loading lines (the start above, asked with the note, passes without the turn too).
    await agent.call("stop", { id: "noted" });
    const loading = agent.call("start", { spec: specFor("noted", bed.model, s.port!) });
    const note3 = await agent.call("logNote", { id: "noted", text: "asked while it loads" });
    await loading;
    // llama-server answers /health 200 before it logs "model loaded" and "listening on", and logs through a thread
    // of its own: those lines may reach the file after ready (and after the note). Its loading lines come before
    // ready; the note must come after them. Read once "listening on" is there (a CI run read the file too soon).
    const header = () => lines.findLastIndex((l) => l.startsWith("=== synapse host-agent: starting noted "));
    const until = Date.now() + 10_000;
    for (;;) {
      lines = await fileLines(s.logPath!);
      if (lines.slice(header() + 1).some((l) => /listening on http:\/\//.test(l))) break;
      if (Date.now() > until) throw new Error(`llama-server logged no 'listening on' within 10 s of being ready; the run's log:\n${lines.slice(header()).join("\n")}`);
      await new Promise((r) => setTimeout(r, 25));
    }
    const loadingLines = lines.findLastIndex((l) => /load_model: |load_tensors: |sched_reserve: |warming up/.test(l));
    expect(loadingLines).toBeGreaterThan(header());
    expect(lines.indexOf(note3.line)).toBeGreaterThan(loadingLines);
    await agent.call("stop", { id: "noted" });
    lines = await fileLines(s.logPath!);

    await expect(agent.call("logNote", { id: "never-ran", text: "x" })).rejects.toMatchObject({ code: "NOT_FOUND", message: expect.stringMatching(/^no log for server never-ran/) });
    await expect(agent.call("logNote", { id: "noted", text: "x".repeat(1001) })).rejects.toMatchObject({ code: "BAD_REQUEST" });
    expect((await fileLines(s.logPath!)).length).toBe(lines.length);
  });
});
