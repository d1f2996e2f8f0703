/** The CLI's status table: what a terminal user reads. */
import { execFile } from "node:child_process";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { appUrl, main, modelOutcomeOk, modelReport, startAllReport, stateDetail, statusReport, stopAllReport, table } from "./cli";
import { parseArgs } from "./cli-args";

const base = { host: "local", port: 8080, pid: null, uptimeMs: null, restarts: 0, lastError: null, desired: "stopped", cause: null };

describe("synapse status table", () => {
  it("names an idle on-demand model idle (as the dashboard does) and shows why a model is not running", () => {
    const out = table(
      [
        { ...base, name: "alpha", state: "ready", pid: 4242, uptimeMs: 65_000, desired: "running", loadPolicy: "always" },
        { ...base, name: "bravo", port: 8081, state: "stopped", loadPolicy: "on-demand", cause: "idle" },
        { ...base, name: "charlie", port: 8082, state: "stopped", loadPolicy: "always", cause: "requested" },
        { ...base, name: "delta", port: 8083, state: "stopped", loadPolicy: "always", desired: "running" },
        { ...base, name: "echo", port: 8084, state: "failed", loadPolicy: "always", desired: "running", restarts: 5, cause: "crash", lastError: "exited with code 1\nmore" },
      ],
      true,
    );
    const lines = out.split("\n");
    expect(lines[0]).toMatch(/^MODEL\s+HOST\s+PORT\s+STATE\s+POLICY\s+PID\s+UPTIME\s+RESTARTS\s+CAUSE\s+IN FLIGHT\s+LAST USED\s+IDLE UNLOAD\s+LAST ERROR$/);
    expect(lines[1]).toMatch(/^alpha\s+local\s+8080\s+ready\s+always\s+4242\s+1m05s\s+0\s+-\s+0\s+-\s+-$/);
    expect(lines[2]).toMatch(/^bravo\s+local\s+8081\s+idle\s+on-demand\s+-\s+-\s+0\s+idle\s+0\s+-\s+idle \(loads on first request\)$/);
    expect(lines[3]).toMatch(/^charlie\s+local\s+8082\s+stopped\s+always\s+-\s+-\s+0\s+requested\s+0\s+-\s+-$/);
    expect(lines[4]).toMatch(/^delta\s+local\s+8083\s+queued\s/);
    expect(lines[5]).toMatch(/^echo\s+local\s+8084\s+failed\s+always\s+-\s+-\s+5\s+crash\s+0\s+-\s+-\s+exited with code 1$/);
  });

  it("says a model is disabled, also while it still runs (the gateway refuses it 409)", () => {
    const lines = table(
      [
        { ...base, name: "alpha", state: "ready", pid: 4242, uptimeMs: 5_000, desired: "running", loadPolicy: "always", enabled: false },
        { ...base, name: "bravo", port: 8081, state: "stopped", loadPolicy: "always", enabled: false },
        { ...base, name: "charlie", port: 8082, state: "stopped", loadPolicy: "always", enabled: true },
      ],
      true,
    ).split("\n");
    expect(lines[1]).toMatch(/^alpha\s+local\s+8080\s+ready \(disabled\)\s+always\s+4242\s/);
    expect(lines[2]).toMatch(/^bravo\s+local\s+8081\s+stopped \(disabled\)\s+always\s+-\s/);
    expect(lines[3]).toMatch(/^charlie\s+local\s+8082\s+stopped\s+always\s+-\s/);
  });

  it("shows each model's load policy and the gateway's use of it: requests in flight, last use and the idle unload, relative to now", () => {
    const now = Date.parse("2026-12-01T02:00:00.000Z");
    const ago = (ms: number) => new Date(now - ms).toISOString();
    const usage = { inFlight: 0, lastUsedAt: null, idleUnloadAt: null };
    const lines = table(
      [
        // An always model is never unloaded for idleness, busy or not.
        { ...base, ...usage, name: "steady", state: "ready", pid: 100, uptimeMs: 600_000, desired: "running", loadPolicy: "always", inFlight: 2, lastUsedAt: ago(12_000) },
        { ...base, ...usage, name: "warm", port: 8081, state: "ready", pid: 101, uptimeMs: 60_000, desired: "running", loadPolicy: "on-demand", lastUsedAt: ago(50_000), idleUnloadAt: ago(-250_400) },
        { ...base, ...usage, name: "busy", port: 8082, state: "ready", pid: 102, uptimeMs: 30_000, desired: "running", loadPolicy: "on-demand", inFlight: 1, lastUsedAt: ago(3_000) },
        { ...base, ...usage, name: "lazy", port: 8083, state: "stopped", loadPolicy: "on-demand", cause: "idle", lastUsedAt: ago(2 * 3_600_000 + 180_000) },
        // Disabled: requests get 409, so it is not waiting for one.
        { ...base, ...usage, name: "off", port: 8084, state: "stopped", loadPolicy: "on-demand", enabled: false },
      ],
      true,
      now,
    ).split("\n");
    expect(lines[1]).toMatch(/^steady\s+local\s+8080\s+ready\s+always\s+100\s+10m00s\s+0\s+-\s+2\s+12s ago\s+-$/);
    expect(lines[2]).toMatch(/^warm\s+local\s+8081\s+ready\s+on-demand\s+101\s+1m00s\s+0\s+-\s+0\s+50s ago\s+unloads in 4m 10s$/);
    expect(lines[3]).toMatch(/^busy\s+local\s+8082\s+ready\s+on-demand\s+102\s+30s\s+0\s+-\s+1\s+3s ago\s+in use$/);
    expect(lines[4]).toMatch(/^lazy\s+local\s+8083\s+idle\s+on-demand\s+-\s+-\s+0\s+idle\s+0\s+2h 03m ago\s+idle \(loads on first request\)$/);
    expect(lines[5]).toMatch(/^off\s+local\s+8084\s+idle \(disabled\)\s+on-demand\s+-\s+-\s+0\s+-\s+0\s+-\s+-$/);
    // Aligned: each column starts where its header does.
    const col = (name: string) => lines[0]!.indexOf(name);
    expect(lines.slice(1).map((l) => l.slice(col("POLICY")).split(/\s{2,}/)[0])).toEqual(["always", "on-demand", "on-demand", "on-demand", "on-demand"]);
    expect(lines[2]!.indexOf("unloads in")).toBe(col("IDLE UNLOAD"));
    expect(lines[4]!.indexOf("idle (loads")).toBe(col("IDLE UNLOAD"));
    expect(lines[1]!.indexOf("12s ago")).toBe(col("LAST USED"));
  });

  it("a crashed server waiting for its restart says when it is due; its LAST ERROR is the reason without the log lines' mark", () => {
    const now = Date.parse("2026-12-01T02:00:00.000Z");
    const crashed = { ...base, inFlight: 0, lastUsedAt: null, idleUnloadAt: null, name: "crashy", state: "exited", pid: null, desired: "running", loadPolicy: "always", cause: "crash", restarts: 1, lastError: "exited (crashed: killed by SIGKILL); last log lines:\nsrv  log line" };
    const lines = table([{ ...crashed, nextRestartAt: new Date(now + 1_400).toISOString() }, { ...crashed, name: "late", nextRestartAt: new Date(now - 100).toISOString() }, { ...crashed, name: "given-up", state: "failed", nextRestartAt: null }], true, now).split("\n");
    expect(lines[1]).toMatch(/^crashy\s+local\s+8080\s+exited \(restart in 1\.4 s\)\s+always\s+-\s+-\s+1\s+crash\s+0\s+-\s+-\s+exited \(crashed: killed by SIGKILL\)$/);
    expect(lines[2]).toMatch(/^late\s+local\s+8080\s+exited \(restart due\)\s/);
    expect(lines[3]).toMatch(/^given-up\s+local\s+8080\s+failed\s+always\s/);
  });

  it("start-all results (no view fields) keep the agent's state names", () => {
    const out = table([{ name: "alpha", host: "local", port: 8080, state: "ready", pid: 7 }], false);
    expect(out.split("\n")[1]).toMatch(/^alpha\s+local\s+8080\s+ready\s+7$/);
  });
});

describe("synapse status with a host unreachable", () => {
  it("its models' STATE says it is the last known, UPTIME is the one at the last contact, and a line below says why, with the link's error", () => {
    const since = "2026-12-02T09:01:02.000Z";
    const error = "host 'loopback-ssh' is unreachable (next attempt in 4000 ms): connect ECONNREFUSED 127.0.0.1:2222";
    const down = { kind: "ssh", state: "disconnected", error, unreachableSince: since };
    const out = statusReport(
      [
        { ...base, name: "local-one", state: "ready", pid: 11, uptimeMs: 600_000, desired: "running", loadPolicy: "always", link: { kind: "local", state: "connected", error: null, unreachableSince: null } },
        { ...base, host: "loopback-ssh", name: "remote-tiny", state: "ready", pid: 4242, uptimeMs: 65_000, desired: "running", loadPolicy: "always", link: down },
        { ...base, host: "loopback-ssh", name: "remote-two", state: "stopped", loadPolicy: "always", link: down },
        // Stopped while the host is away: recorded (wanted stopped), its last known state still ready.
        { ...base, host: "loopback-ssh", name: "remote-zed", state: "ready", pid: 4343, uptimeMs: 5_000, desired: "stopped", loadPolicy: "on-demand", link: down },
        // Restarted while the host is away: recorded, made when it is back.
        { ...base, host: "loopback-ssh", name: "remote-zz", state: "ready", pid: 4444, uptimeMs: 5_000, desired: "running", loadPolicy: "always", link: down, restartPending: true },
      ],
      Date.parse("2026-12-02T09:05:00.000Z"),
    );
    const lines = out.split("\n");
    // A trial's `synapse stop` said the stop was recorded, then `synapse status` said nothing of it.
    expect(lines[4]).toMatch(/^remote-zed\s+loopback-ssh\s+8080\s+\S+ \(last known; host unreachable; stop recorded, made when it is back\)\s/);
    expect(lines[5]).toMatch(/^remote-zz\s+loopback-ssh\s+8080\s+ready \(last known; host unreachable; restart recorded, made when it is back\)\s/);
    lines.splice(4, 2);
    expect(lines[1]).toMatch(/^local-one\s+local\s+8080\s+ready\s+always\s+11\s+10m00s\s/);
    expect(lines[2]).toMatch(/^remote-tiny\s+loopback-ssh\s+8080\s+ready \(last known; host unreachable\)\s+always\s+4242\s+1m05s\s/);
    expect(lines[3]).toMatch(/^remote-two\s+loopback-ssh\s+8080\s+stopped \(last known; host unreachable\)\s/);
    const at = new Date(since).toTimeString().slice(0, 8);
    expect(lines[4]).toBe(`host loopback-ssh is unreachable since ${at} (link disconnected: ${error}): remote-tiny, remote-two, remote-zed, remote-zz show their last known state; what runs there now is not known`);
    expect(lines).toHaveLength(5);
  });

  it("a host connecting for the first time since the app started is not called unreachable", () => {
    const out = statusReport([{ ...base, name: "remote-tiny", state: "ready", pid: 1, desired: "running", loadPolicy: "always", link: { kind: "ssh", state: "connecting", error: null, unreachableSince: null } }], Date.now());
    expect(out).not.toMatch(/unreachable/);
  });
});

describe("synapse start-all report", () => {
  const row = { host: "local", pid: 7, error: null };
  const over = "beta needs 60.0 MiB (weights 60.0, KV cache 0.0, compute 0.0); local has 40.0 of 100.0 MiB left; stop alpha (60.0 MiB)";

  it("--force: the count says how many went over the memory budget, and each forced start is printed with its numbers", () => {
    const lines = startAllReport(
      [
        { ...row, name: "alpha", port: 8080, state: "ready", memory: { verdict: "fits", message: null } },
        { ...row, name: "beta", port: 8081, state: "ready", pid: 8, memory: { verdict: "forced", message: over } },
      ],
      false,
    ).split("\n");
    expect(lines.slice(3)).toEqual(["2 of 2 ready (1 started by --force over the memory budget)", `started by --force over the memory budget: ${over}`, ""]);
  });

  it("without --force: refusals whole, with their numbers; nothing about force", () => {
    const lines = startAllReport(
      [
        { ...row, name: "alpha", port: 8080, state: "ready", memory: { verdict: "fits", message: null } },
        { ...row, name: "beta", port: 8081, state: "stopped", pid: null, error: over, memory: { verdict: "refused", message: over } },
      ],
      false,
    ).split("\n");
    expect(lines.slice(3)).toEqual(["1 of 2 ready", `not started (memory): ${over}`, ""]);
  });

  it("says how many were already running (nothing was started for them), beside the forced ones", () => {
    const at = (name: string, port: number, verdict: string) => ({ ...row, name, port, state: "ready", memory: { verdict, message: null } });
    const lines = startAllReport([at("a", 8080, "running"), at("b", 8081, "running"), at("c", 8082, "forced")], false).split("\n");
    expect(lines[4]).toBe("3 of 3 ready (2 already running; 1 started by --force over the memory budget)");
    expect(startAllReport([at("c", 8082, "fits")], false).split("\n")[2]).toBe("1 of 1 ready");
  });

  it("names the enabled on-demand models it left for their first request, also when it started nothing", () => {
    expect(startAllReport([], false, ["lazy", "later"]).split("\n")).toEqual(["no enabled models with load policy always", "on demand (each starts on its first request): lazy, later", ""]);
    expect(startAllReport([], false)).toBe("no enabled models\n");
  });

  it("an on-demand model a request already loaded is not listed as waiting for its first request", () => {
    const lines = startAllReport([], false, ["lazy", "busy"], new Set(["busy"])).split("\n");
    expect(lines).toEqual(["no enabled models with load policy always", "on demand, loaded (unloaded after its idle time): busy", "on demand (each starts on its first request): lazy", ""]);
  });

  it("--no-wait: the ready and the starting are counted apart, as the table shows them", () => {
    const rows = [
      { ...row, name: "alpha", port: 8080, state: "ready", memory: { verdict: "running", message: null } },
      { ...row, name: "beta", port: 8081, state: "starting", pid: 8, memory: { verdict: "fits", message: null } },
    ];
    expect(startAllReport(rows, true).split("\n")[3]).toBe("2 of 2 up: 1 ready, 1 starting (1 already running)");
    expect(startAllReport([rows[1]!], true).split("\n")[2]).toBe("1 of 1 up: 1 starting");
    expect(startAllReport([rows[0]!], true).split("\n")[2]).toBe("1 of 1 up: 1 ready (1 already running)");
  });

  it("--help prints the usage and succeeds", async () => {
    let printed = "";
    expect(await main(["--help"], (s) => (printed += s), () => undefined)).toBe(0);
    expect(printed).toMatch(/^usage: synapse /);
  });
});

describe("synapse stop-all report", () => {
  it("the table and how many stopped; with nothing running, that line only (no \"0 of 0 stopped\")", () => {
    const lines = stopAllReport([
      { name: "alpha", host: "local", port: 8080, state: "stopped", pid: null, error: null },
      { name: "bravo", host: "local", port: 8081, state: "ready", pid: 8, error: "host local: timed out" },
    ]).split("\n");
    expect(lines.slice(1)).toEqual([expect.stringMatching(/^alpha\s+local\s+8080\s+stopped\s+-\s*$/), expect.stringMatching(/^bravo\s+local\s+8081\s+ready\s+8\s+host local: timed out$/), "1 of 2 stopped", ""]);
    expect(stopAllReport([])).toBe("nothing was running\n");
  });

  it("under the count, what the table cannot say: a restart after a crash cancelled, a failed model recorded stopped", () => {
    const lines = stopAllReport([
      { name: "alpha", host: "local", port: 8080, state: "stopped", pid: null, error: null },
      { name: "bench", host: "local", port: 8081, state: "stopped", pid: null, error: null, previousState: "exited", restartCancelled: { dueAt: "2026-12-01T10:00:04.000Z", dueInMs: 3950 } },
      { name: "cold", host: "local", port: 8082, state: "stopped", pid: null, error: null, notRunning: true, previousState: "failed" },
    ]).split("\n");
    expect(lines.slice(4)).toEqual(["3 of 3 stopped", "bench: stopped; its restart (due in 4.0 s) is cancelled", "cold had failed, nothing was running: recorded as stopped (its last error stays as history)", ""]);
  });
});

describe("synapse usage errors", () => {
  it("names the argument that is wrong, after the usage, with exit 2 and no request", async () => {
    const usage = async (argv: string[]) => {
      let stderr = "";
      const code = await main(argv, () => {}, (s) => (stderr += s));
      const lines = stderr.split("\n").filter(Boolean);
      // The usage (its first line "usage: synapse …", then one indented line per group of commands), then the problem.
      return { code, usage: lines[0]?.startsWith("usage: synapse ") === true && lines.slice(1, 4).every((l) => l.startsWith("  ")), problem: lines.slice(4) };
    };
    expect(await usage(["start-all", "--forse"])).toEqual({ code: 2, usage: true, problem: ["synapse: unknown option --forse"] });
    expect(await usage(["stop-all", "--force"])).toEqual({ code: 2, usage: true, problem: ["synapse: --force is an option of start and start-all"] });
    expect(await usage(["statuss"])).toEqual({ code: 2, usage: true, problem: ["synapse: unknown command statuss"] });
    expect(await usage(["status", "now"])).toEqual({ code: 2, usage: true, problem: ["synapse: unexpected argument now"] });
    expect(await usage([])).toEqual({ code: 2, usage: true, problem: [] });
  });
});

describe("synapse per-model commands: the command line", () => {
  const usage = async (argv: string[]) => {
    let stderr = "";
    let stdout = "";
    const code = await main(argv, (s) => (stdout += s), (s) => (stderr += s));
    return { code, stdout, lines: stderr.split("\n").filter(Boolean) };
  };
  const wrong = (problem: string) => ({ code: 2, stdout: "", lines: [expect.stringMatching(/^usage: synapse /), expect.stringMatching(/^ /), expect.stringMatching(/^ /), expect.stringMatching(/^ /), `synapse: ${problem}`] });

  it("reads start, stop, restart and logs with the model and each one's options", () => {
    const base = { json: false, noWait: false, force: false, lines: null, grep: null, follow: false };
    expect(parseArgs(["start", "alpha"])).toEqual({ kind: "model", command: "start", model: "alpha", ...base });
    expect(parseArgs(["start", "--no-wait", "alpha", "--force", "--json"])).toEqual({ kind: "model", command: "start", model: "alpha", ...base, json: true, noWait: true, force: true });
    expect(parseArgs(["stop", "qwen-coder"])).toEqual({ kind: "model", command: "stop", model: "qwen-coder", ...base });
    expect(parseArgs(["restart", "alpha", "--no-wait"])).toEqual({ kind: "model", command: "restart", model: "alpha", ...base, noWait: true });
    expect(parseArgs(["logs", "alpha"])).toEqual({ kind: "model", command: "logs", model: "alpha", ...base });
    expect(parseArgs(["logs", "alpha", "--lines", "20"])).toMatchObject({ kind: "model", lines: 20 });
    expect(parseArgs(["logs", "--lines=5000", "alpha"])).toMatchObject({ kind: "model", model: "alpha", lines: 5000 });
    expect(parseArgs(["logs", "alpha", "--grep", "  failed to load  "])).toMatchObject({ kind: "model", model: "alpha", grep: "failed to load" });
    expect(parseArgs(["logs", "--grep=--port 8080", "alpha"])).toMatchObject({ kind: "model", model: "alpha", grep: "--port 8080" });
    expect(parseArgs(["logs", "alpha", "--follow"])).toMatchObject({ kind: "model", follow: true });
    expect(parseArgs(["logs", "-f", "alpha", "--grep", "error"])).toMatchObject({ kind: "model", model: "alpha", follow: true, grep: "error" });
    // An alias may start with "-" (the registry allows any one-line alias): after --, it is the model.
    expect(parseArgs(["stop", "--", "-odd alias"])).toMatchObject({ kind: "model", command: "stop", model: "-odd alias" });
    expect(parseArgs(["start-all", "--force"])).toEqual({ kind: "fleet", command: "start-all", json: false, noWait: false, force: true });
    expect(parseArgs(["logs", "alpha", "--help"])).toEqual({ kind: "help" });
  });

  it("the usage names them", async () => {
    let printed = "";
    expect(await main(["--help"], (s) => (printed += s), () => undefined)).toBe(0);
    for (const part of ["start <model> [--no-wait] [--force]", "stop <model>", "restart <model> [--no-wait]", "logs <model> [--lines N] [--grep TEXT] [--follow]", "start-all [--no-wait] [--force]"]) expect(printed).toContain(part);
  });

  it("names the argument that is wrong, with exit 2 and nothing on stdout", async () => {
    expect(await usage(["start"])).toEqual(wrong("start needs a model: synapse start <model> (its registry name or alias; status lists them)"));
    expect(await usage(["logs", "--lines", "5"])).toEqual(wrong("logs needs a model: synapse logs <model> (its registry name or alias; status lists them)"));
    expect(await usage(["stop", "alpha", "bravo"])).toEqual(wrong("unexpected argument bravo"));
    expect(await usage(["stop", "alpha", "--no-wait"])).toEqual(wrong("--no-wait is an option of start, restart and start-all"));
    expect(await usage(["stop-all", "--no-wait"])).toEqual(wrong("--no-wait is an option of start, restart and start-all"));
    expect(await usage(["restart", "alpha", "--force"])).toEqual(wrong("--force is an option of start and start-all"));
    expect(await usage(["logs", "alpha", "--force"])).toEqual(wrong("--force is an option of start and start-all"));
    expect(await usage(["start", "alpha", "--lines", "5"])).toEqual(wrong("--lines is an option of logs only"));
    expect(await usage(["stop", "alpha", "--grep", "x"])).toEqual(wrong("--grep is an option of logs only"));
    expect(await usage(["restart", "alpha", "--follow"])).toEqual(wrong("--follow is an option of logs only"));
    expect(await usage(["logs", "alpha", "--follow", "--json"])).toEqual(wrong("--follow prints the log's lines as they come, not --json: leave one out"));
    for (const g of [[], ["--grep="], ["--grep", "   "]]) expect(await usage(["logs", "alpha", ...(g.length === 0 ? ["--grep"] : g)])).toEqual(wrong("--grep needs the text to look for: --grep TEXT (case is ignored)"));
    expect(await usage(["logs", "alpha", "--grep", "x".repeat(201)])).toEqual(wrong("--grep takes at most 200 characters, not 201"));
    expect(await usage(["start", "alpha", "--forse"])).toEqual(wrong("unknown option --forse"));
    expect(await usage(["logs", "alpha", "--lines"])).toEqual(wrong("--lines needs a number: --lines N (1 to 5000)"));
    for (const n of ["0", "5001", "-3", "2.5", "ten", ""]) expect(await usage(["logs", "alpha", `--lines=${n}`])).toEqual(wrong(`--lines takes a whole number from 1 to 5000, not ${JSON.stringify(n)}`));
    expect(await usage(["stat"])).toEqual(wrong("unknown command stat"));
  });
});

describe("synapse start, stop and restart: what they print", () => {
  const row = { modelId: "m1", name: "alpha", host: "local", port: 8081, pid: 4242, error: null };
  const over = "alpha needs 60.0 MiB (weights 60.0, KV cache 0.0, compute 0.0); local has 40.0 of 100.0 MiB left; stop bravo (60.0 MiB)";
  const note = (verdict: "fits" | "refused" | "forced" | "running", message: string | null = null) => ({ verdict, message });

  it("a stop its host cannot take now: recorded, and said so with when it is made (was: 'not stopped: host … is unreachable', exit 1, and made 57 s later); exit 0", () => {
    const reason = "host 'loopback-ssh' is unreachable (next attempt in 1000 ms): connect ECONNREFUSED 127.0.0.1:2222";
    const r = { ...row, name: "remote-tiny", host: "loopback-ssh", state: "ready", stopPending: { host: "loopback-ssh", reason } };
    expect(modelReport("stop", r).split("\n")).toEqual([
      expect.stringMatching(/^MODEL\s/),
      // Its state is the last known, as `synapse status` says it (the old code: a bare "ready").
      expect.stringMatching(/^remote-tiny\s+loopback-ssh\s+8081\s+ready \(last known; host unreachable\)\s+4242$/),
      `stop recorded, not yet made: host loopback-ssh cannot be reached now (${reason}); remote-tiny is stopped when the host is reachable again`,
      "",
    ]);
    expect(modelOutcomeOk("stop", r)).toBe(true);
    const all = stopAllReport([{ ...r, state: "ready" }, { ...row, name: "beta", state: "stopped" }]).split("\n");
    expect(all).toContain("1 of 2 stopped, 1 recorded to stop when its host is reachable again");
    expect(all).toContain(`stop recorded, not yet made: host loopback-ssh cannot be reached now (${reason}); remote-tiny is stopped when the host is reachable again`);
  });

  it("a restart its host cannot take now: recorded, said as a pending stop is, its row the last known state; exit 0 (was: 'not restarted: host … is unreachable', exit 1)", () => {
    const reason = "host 'loopback-ssh' is unreachable (next attempt in 1000 ms): connect ECONNREFUSED 127.0.0.1:2222";
    const r = { ...row, name: "remote-tiny", host: "loopback-ssh", state: "ready", restartPending: { host: "loopback-ssh", reason } };
    expect(modelReport("restart", r).split("\n")).toEqual([
      expect.stringMatching(/^MODEL\s/),
      expect.stringMatching(/^remote-tiny\s+loopback-ssh\s+8081\s+ready \(last known; host unreachable\)\s+4242$/),
      `restart recorded, not yet made: host loopback-ssh cannot be reached now (${reason}); remote-tiny is restarted when the host is reachable again`,
      "",
    ]);
    expect(modelOutcomeOk("restart", r)).toBe(true);
    // A restart that reached its host and failed is still a failure.
    expect(modelOutcomeOk("restart", { ...row, state: "ready", error: "cannot start alpha: port 8081 is held" })).toBe(false);
  });

  it("a start: the model's row, state, port and pid; exit 0", () => {
    const r = { ...row, state: "ready", memory: note("fits") };
    expect(modelReport("start", r).split("\n")).toEqual([expect.stringMatching(/^MODEL\s+HOST\s+PORT\s+STATE\s+PID$/), expect.stringMatching(/^alpha\s+local\s+8081\s+ready\s+4242$/), ""]);
    expect(modelOutcomeOk("start", r)).toBe(true);
    expect(modelOutcomeOk("start", { ...r, state: "starting" })).toBe(true);
  });

  it("a start of a disabled model: the row reads 'ready (disabled)' and a note says the gateway refuses it until it is enabled; exit 0", () => {
    const message = "alpha is disabled: it was started, but the gateway (/v1) refuses its requests (409 model_disabled) until it is enabled; enable it …";
    const r = { ...row, state: "ready", memory: note("fits"), disabled: { message } };
    expect(modelReport("start", r).split("\n")).toEqual([expect.stringMatching(/^MODEL\s/), expect.stringMatching(/^alpha\s+local\s+8081\s+ready \(disabled\)\s+4242$/), `note: ${message}`, ""]);
    expect(modelOutcomeOk("start", r)).toBe(true);
  });

  it("a start the memory plan refused: its refusal whole, with the numbers; a failure", () => {
    const r = { ...row, state: "stopped", pid: null, error: over, memory: note("refused", over) };
    const lines = modelReport("start", r).split("\n");
    // The row has no ERROR column: the next line gives the error whole.
    expect(lines[1]).toMatch(/^alpha\s+local\s+8081\s+stopped\s+-$/);
    expect(lines.slice(2)).toEqual([`not started (memory): ${over}`, ""]);
    expect(modelOutcomeOk("start", r)).toBe(false);
  });

  it("a start refused because its port is held: the holder and what to change, whole", () => {
    const held = "cannot start alpha: port 8081 is held by pid 777 (python3); stop that process, or give this model a free port (its Edit form, or models.update with port), then start it again";
    const r = { ...row, state: "failed", pid: null, error: `${held}\nmore`, memory: note("fits") };
    expect(modelReport("start", r).split("\n").slice(2)).toEqual([`not started: ${held}`, "more", ""]);
    expect(modelOutcomeOk("start", r)).toBe(false);
  });

  it("--force over the budget and a model already running say so", () => {
    expect(modelReport("start", { ...row, state: "ready", memory: note("forced", over) }).split("\n")[2]).toBe(`started by --force over the memory budget: ${over}`);
    expect(modelReport("start", { ...row, state: "ready", memory: note("running") }).split("\n")[2]).toBe("alpha was already running: nothing was started");
  });

  it("a stop: stopped is good, a server still running is not; a restart whose stop failed is a failure though the old process runs", () => {
    expect(modelReport("stop", { ...row, state: "stopped", pid: null }).split("\n")[1]).toMatch(/^alpha\s+local\s+8081\s+stopped\s+-$/);
    expect(modelOutcomeOk("stop", { ...row, state: "stopped", pid: null })).toBe(true);
    const stuck = { ...row, state: "ready", error: "host local: timed out" };
    expect(modelOutcomeOk("stop", stuck)).toBe(false);
    expect(modelReport("stop", stuck).split("\n")[2]).toBe("not stopped: host local: timed out");
    expect(modelOutcomeOk("restart", stuck)).toBe(false);
    expect(modelOutcomeOk("restart", { ...row, state: "ready" })).toBe(true);
  });

  it("a stop of a model that was not running says so, as a start of a running one does; one that ended a process does not", () => {
    const idle = { ...row, state: "stopped", pid: null, notRunning: true as const };
    expect(modelReport("stop", idle).split("\n")).toEqual([expect.stringMatching(/^MODEL\s+HOST\s+PORT\s+STATE\s+PID$/), expect.stringMatching(/^alpha\s+local\s+8081\s+stopped\s+-$/), "alpha was not running: nothing was stopped", ""]);
    expect(modelOutcomeOk("stop", idle)).toBe(true);
    expect(modelReport("stop", { ...row, state: "stopped", pid: null }).split("\n")).toHaveLength(3);
    // Still running after all (the host did not stop it): not "nothing was stopped", the error.
    expect(modelReport("stop", { ...idle, state: "ready", pid: 4242, error: "host local: timed out" }).split("\n").slice(2)).toEqual(["not stopped: host local: timed out", ""]);
  });

  it("a stop of a model waiting to restart after a crash says it cancelled the restart, with when it was due; not 'not running'", () => {
    const cancelled = { ...row, name: "bench", state: "stopped", pid: null, previousState: "exited", restartCancelled: { dueAt: "2026-12-01T10:00:04.000Z", dueInMs: 4000 } };
    expect(modelReport("stop", cancelled).split("\n").slice(1)).toEqual([expect.stringMatching(/^bench\s+local\s+8081\s+stopped\s+-$/), "bench: stopped; its restart (due in 4.0 s) is cancelled", ""]);
    expect(modelOutcomeOk("stop", cancelled)).toBe(true);
    // Given as the restart was due: "due now".
    expect(modelReport("stop", { ...cancelled, restartCancelled: { dueAt: cancelled.restartCancelled.dueAt, dueInMs: -20 } }).split("\n")[2]).toBe("bench: stopped; its restart (due now) is cancelled");
    // Under a tenth of a second off (the trial's stop right after a kill -9): "due now", not "due in 0.0 s".
    expect(modelReport("stop", { ...cancelled, restartCancelled: { dueAt: cancelled.restartCancelled.dueAt, dueInMs: 21 } }).split("\n")[2]).toBe("bench: stopped; its restart (due now) is cancelled");
  });

  it("a stop of a failed model says what it found and that it is now recorded stopped; an older app's answer (notRunning alone) reads as before", () => {
    const failed = { ...row, state: "stopped", pid: null, notRunning: true as const, previousState: "failed" };
    expect(modelReport("stop", failed).split("\n").slice(2)).toEqual(["alpha had failed, nothing was running: recorded as stopped (its last error stays as history)", ""]);
    expect(modelReport("stop", { ...failed, previousState: "exited" }).split("\n")[2]).toBe("alpha had crashed, nothing was running: recorded as stopped (its last error stays as history)");
    const { previousState: _, ...older } = failed;
    expect(modelReport("stop", older).split("\n")[2]).toBe("alpha was not running: nothing was stopped");
  });
});

describe("synapse run from another folder", () => {
  it("starts (here: its usage, exit 2) when the working folder is not the checkout, as a script calling it by path does", async () => {
    const repo = path.resolve(import.meta.dirname, "../..");
    const res = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, ["--import", path.join(repo, "node_modules/tsx/dist/esm/index.mjs"), path.join(repo, "src/client/cli.ts"), "no-such-command"], { cwd: tmpdir(), timeout: 60_000 }, (err, _stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === "number" ? err.code : null) : 0, stderr });
      });
    });
    expect(res.stderr).toMatch(/^usage: synapse /);
    expect(res.code).toBe(2);
  });
});

describe("the app's address", () => {
  it("SYNAPSE_URL when set; else the app's own PORT on this machine (PORT=3300 npm start and the CLI in the same shell agree); else 3000", () => {
    expect(appUrl({ SYNAPSE_URL: "http://mac.lan:3000//", PORT: "3300" })).toBe("http://mac.lan:3000");
    expect(appUrl({ PORT: "3300" })).toBe("http://127.0.0.1:3300");
    expect(appUrl({})).toBe("http://127.0.0.1:3000");
    // Not a port the app would listen on: the default, as without PORT (the app itself refuses to start with it).
    for (const PORT of ["", "abc", "0", "70000", "33.5"]) expect(appUrl({ PORT })).toBe("http://127.0.0.1:3000");
    // HOSTNAME is the machine's name in shells and containers, not the app's address.
    expect(appUrl({ HOSTNAME: "buildbox", PORT: "3300" })).toBe("http://127.0.0.1:3300");
  });
});

describe("logs --follow's state lines", () => {
  it("say the model and its state once: an event's own message gives only its words in brackets", () => {
    expect(stateDetail("synapse-tiny: failed (crashed 5 times within 10 minutes; not restarting it again until it is started by hand)", "synapse-tiny")).toBe("crashed 5 times within 10 minutes; not restarting it again until it is started by hand");
    expect(stateDetail("alpha: stopped (stopped to restart)", "alpha")).toBe("stopped to restart");
    expect(stateDetail("alpha: ready", "alpha")).toBeNull();
    // A reason of the event's own (the agent's) is kept whole; so is one naming another model.
    expect(stateDetail("killed by SIGKILL", "alpha")).toBe("killed by SIGKILL");
    expect(stateDetail("alphabet: failed (x)", "alpha")).toBe("alphabet: failed (x)");
    expect(stateDetail(null, "alpha")).toBeNull();
  });
});
