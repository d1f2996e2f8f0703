/**
 * The production-mode harness itself, and what the production server does
 * with its configuration before anything else (the checks a container's
 * environment meets first).
 */
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isLiveProcess } from "../host-agent/test/harness/fixtures";
import { freePort } from "../host-agent/test/harness/ports";
import { tinyModel } from "../host-agent/test/harness/tiny-model";
import { startApp } from "../test/harness/app-server";

/** Pids of the processes whose command line mentions `text` (here: an app's temp folder, which its llama-servers' model paths are in). */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, "utf8").includes(text)) pids.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return pids.sort((a, b) => a - b);
}

const TOKEN = "e2e-token-0123456789abcdef";

describe("app server harness (production build, image command)", () => {
  it("stops start-up on a bad variable, naming it", async () => {
    const app = await startApp({ name: "bad-env", env: { LOG_LEVEL: "loud" }, waitForHealth: false });
    const exit = await app.exited;
    expect(exit.code).toBe(1);
    expect(app.stderr()).toContain("LOG_LEVEL");
  });

  it("refuses to listen beyond loopback without an API token", async () => {
    const app = await startApp({ name: "no-token", env: { HOSTNAME: "0.0.0.0" }, waitForHealth: false });
    expect((await app.exited).code).toBe(1);
    expect(app.stderr()).toContain("SYNAPSE_API_TOKEN");
  });

  it("with a token: the API needs it, /api/health stays open", async () => {
    const app = await startApp({ name: "token", env: { SYNAPSE_API_TOKEN: TOKEN } });
    expect((await app.fetch("/api/health", { auth: false })).status).toBe(200);
    expect((await app.fetch("/api/trpc/models.list", { auth: false })).status).toBe(401);
    const listed = await app.trpc.query<unknown[]>("models.list");
    expect(listed).toMatchObject({ status: 200, data: [] });
    const stopped = await app.stop();
    expect(stopped).toMatchObject({ code: 0, killed: false });
  });

  it("names the address to open only once the app answers there, after its ready line", async () => {
    const app = await startApp({ name: "answers" });
    const opened = await app.waitForLog({ component: "start", msg: `the app answers: open ${app.url}` }, 10_000);
    const records = app.logs();
    const at = records.indexOf(opened);
    // Before it, no line of the start script names an address (the old "starting" line had the URL before anything listened).
    expect(records.slice(0, at).filter((r) => r.component === "start" && JSON.stringify(r).includes("http://"))).toEqual([]);
    expect(records.findIndex((r) => r.component === "app" && r.msg === "ready")).toBeLessThan(at);
    expect(opened.url).toBe(app.url);
    expect((await app.fetch("/api/health")).status).toBe(200);
  });

  it("a second app on the same port (npm start twice in one folder): one line naming the holder, exit 1, no Ready line, nothing of it left running", async () => {
    const first = await startApp({ name: "port-first" });
    const model = await tinyModel(first.dirs.modelRoot, "held.gguf");
    const created = await first.trpc.mutation<{ id: string }>("models.create", { name: "held", filePath: model, port: await freePort(), enabled: true, ctxSize: 256, threads: 1 });
    expect(created.status, JSON.stringify(created.error)).toBe(200);
    const started = await first.json<{ results: { state: string; pid: number | null }[] }>("/api/models/servers/start-all", { method: "POST" });
    expect(started.body.results).toMatchObject([{ state: "ready" }]);
    const before = processesMentioning(first.dirs.root);

    // Same port, same database and state folder: what a second `npm start` in the same checkout gets.
    const second = await startApp({ name: "port-second", port: first.port, dirs: first.dirs, waitForHealth: false });
    const exit = await second.exited;
    expect(exit.code, second.stderr()).toBe(1);
    const errors = second.stderr().split("\n").filter((l) => l.startsWith("start:") || l.includes('"level":"error"'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(new RegExp(`^start: port ${first.port} is in use \\(by pid ${first.pid}, next-server \\(v[\\d.]+\\)\\); stop that process or set PORT to a free port \\(e\\.g\\. PORT=\\d+, free now\\)$`));
    expect(second.stdout()).not.toContain("Ready");
    expect(second.stdout()).not.toContain("Next.js");

    expect(isLiveProcess(second.pid)).toBe(false);
    // No llama-server started (or stopped) by the second app: the first one's server is the only one, as it was.
    expect(processesMentioning(first.dirs.root)).toEqual(before);
    const rows = await first.json<{ servers: { name: string; state: string; pid: number | null }[] }>("/api/models/servers/status", { method: "GET" });
    expect(rows.body.servers.map((r) => [r.name, r.state, r.pid])).toEqual([["held", "ready", started.body.results[0]!.pid]]);
    expect((await first.fetch("/api/health")).status).toBe(200);
    expect((await first.stop()).leftovers).toEqual([]);
  });

  it("stop() kills an app that does not exit by the deadline", async () => {
    const app = await startApp({ name: "frozen" });
    process.kill(app.pid, "SIGSTOP");
    const stopped = await app.stop("SIGTERM", { timeoutMs: 1000 });
    expect(stopped).toMatchObject({ killed: true, signal: "SIGKILL" });
    expect(app.running).toBe(false);
  });
});
