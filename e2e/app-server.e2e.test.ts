/**
 * The production-mode harness itself, and what the production server does
 * with its configuration before anything else (the checks a container's
 * environment meets first).
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, rm, symlink, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { isLiveProcess } from "../host-agent/test/harness/fixtures";
import { freePort } from "../host-agent/test/harness/ports";
import { tinyModel } from "../host-agent/test/harness/tiny-model";
import { REPO_ROOT } from "../test/harness/app-build";
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

/**
 * A checkout as `npm start` finds it after `touch src/app/page.tsx`: the
 * repository's start and gateway-build scripts, sources and config, and a
 * build older than the sources. Its node_modules links to the real one's
 * packages, but `next` is a stand-in whose `next build` writes `ran-next-build`
 * in the checkout and fails, so a build that should not run is seen (and
 * costs nothing). Returns the checkout's folder.
 */
async function staleCheckout(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "synapse-e2e-checkout-"));
  for (const part of ["scripts", "src", "prisma", "package.json", "tsconfig.json", "next.config.mjs", "host-agent/package.json", "host-agent/src"]) {
    await cp(path.join(REPO_ROOT, part), path.join(dir, part), { recursive: true });
  }
  await mkdir(path.join(dir, "node_modules"));
  for (const name of await readdir(path.join(REPO_ROOT, "node_modules"))) {
    if (name === "next" || name === "synapse-host-agent") continue;
    await symlink(path.join(REPO_ROOT, "node_modules", name), path.join(dir, "node_modules", name));
  }
  await symlink("../host-agent", path.join(dir, "node_modules", "synapse-host-agent"));
  await mkdir(path.join(dir, "node_modules", "next", "dist", "bin"), { recursive: true });
  await writeFile(path.join(dir, "node_modules", "next", "package.json"), '{ "name": "next", "version": "0.0.0-stand-in" }\n');
  await writeFile(
    path.join(dir, "node_modules", "next", "dist", "bin", "next"),
    'require("node:fs").writeFileSync("ran-next-build", process.argv.slice(2).join(" "));\nprocess.stderr.write("stand-in next: a build ran\\n");\nprocess.exit(1);\n',
  );
  // A build, older than the sources.
  await mkdir(path.join(dir, ".next", "standalone"), { recursive: true });
  await writeFile(path.join(dir, ".next", "standalone", "server.js"), "");
  await writeFile(path.join(dir, ".next", "BUILD_ID"), "stale\n");
  const hourAgo = new Date(Date.now() - 3600_000);
  await utimes(path.join(dir, ".next", "BUILD_ID"), hourAgo, hourAgo);
  return dir;
}

/** `node scripts/start.mjs` (what `npm start` runs) in `cwd` with only `env` (and PATH, HOME); killed at `timeoutMs`. */
function runStart(cwd: string, env: Record<string, string>, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const childEnv: Record<string, string> = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env };
    const child = spawn(process.execPath, ["scripts/start.mjs"], { cwd, env: childEnv as NodeJS.ProcessEnv, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("app server harness (production build, image command)", () => {
  it("stops start-up on a bad variable, naming it", async () => {
    const app = await startApp({ name: "bad-env", env: { LOG_LEVEL: "loud" }, waitForHealth: false });
    const exit = await app.exited;
    expect(exit.code).toBe(1);
    // The app's own check, once, before anything listens or Next loads: no "starting the app", no Next banner.
    expect(app.stderr().trimEnd().split("\n")).toEqual(["start: invalid configuration:", "  - LOG_LEVEL must be debug, info, warn or error (got \"loud\")"]);
    expect(app.stdout()).toBe("");
  });

  it("refuses to listen beyond loopback without an API token: one error, before Next says Ready or prints an address", async () => {
    const app = await startApp({ name: "no-token", env: { HOSTNAME: "0.0.0.0" }, waitForHealth: false });
    expect((await app.exited).code).toBe(1);
    expect(app.stderr().trimEnd().split("\n")).toEqual([
      "start: invalid configuration:",
      "  - SYNAPSE_API_TOKEN is required when HOSTNAME=0.0.0.0 (reachable beyond loopback); set a random string of 16+ characters",
    ]);
    expect(app.stdout()).not.toContain("Ready");
    expect(app.stdout()).not.toContain("Local:");
    expect(app.stdout()).toBe("");
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
    // One "starting the app", once the address is the app's (the README promises one such line).
    expect(records.filter((r) => r.component === "start" && r.msg === "starting the app")).toMatchObject([{ listen: `127.0.0.1:${app.port}` }]);
    expect(opened.url).toBe(app.url);
    expect((await app.fetch("/api/health")).status).toBe(200);
  });

  it("a second app on the same port (npm start twice in one folder): one line naming the holder, exit 1, no Ready line, nothing of it left running", async () => {
    const first = await startApp({ name: "port-first" });
    const model = await tinyModel(first.dirs.modelRoot, "held.gguf");
    const modelPort = await freePort();
    const created = await first.trpc.mutation<{ id: string }>("models.create", { name: "held", filePath: model, port: modelPort, enabled: true, ctxSize: 256, threads: 1 });
    expect(created.status, JSON.stringify(created.error)).toBe(200);
    const started = await first.json<{ results: { state: string; pid: number | null }[] }>("/api/models/servers/start-all", { method: "POST" });
    expect(started.body.results).toMatchObject([{ state: "ready" }]);
    const before = processesMentioning(first.dirs.root);

    // Same port, same database and state folder: what a second `npm start` in the same checkout gets.
    const second = await startApp({ name: "port-second", port: first.port, dirs: first.dirs, waitForHealth: false });
    const exit = await second.exited;
    expect(exit.code, second.stderr()).toBe(1);
    // All it prints is that line: not "starting the app" first.
    const lines = second.stderr().trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^start: port ${first.port} is in use \\(by pid ${first.pid}, next-server \\(v[\\d.]+\\)\\); stop that process or set PORT to a free port \\(e\\.g\\. PORT=\\d+, free now(; \\d+ is model held's)?\\)$`));
    // The port it suggests is no model's (a model's port next to the app's is named as one).
    expect(lines[0]).not.toContain(`PORT=${modelPort},`);
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

  it("npm start in a checkout whose build is older than its sources, while the app runs on its port: the port line before any build, nothing rebuilt", async () => {
    const first = await startApp({ name: "port-held" });
    const checkout = await staleCheckout();
    try {
      const r = await runStart(checkout, { PORT: String(first.port) });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).not.toContain("building the app");
      expect(existsSync(path.join(checkout, "ran-next-build")), "next build ran").toBe(false);
      expect(r.stderr.trimEnd().split("\n")).toEqual([expect.stringMatching(new RegExp(`^start: port ${first.port} is in use \\(by pid ${first.pid}, next-server \\(v[\\d.]+\\)\\); stop that process or set PORT to a free port`))]);
      expect(r.stdout).toBe("");
      expect((await first.fetch("/api/health")).status).toBe(200);
      expect((await first.stop()).leftovers).toEqual([]);
    } finally {
      await rm(checkout, { recursive: true, force: true });
    }
  });

  it("npm start in a checkout whose build is older than its sources, with a bad configuration: the app's error before any build", async () => {
    const checkout = await staleCheckout();
    try {
      const r = await runStart(checkout, { HOSTNAME: "0.0.0.0", PORT: String(await freePort()) });
      expect(r.code, r.stderr).toBe(1);
      expect(existsSync(path.join(checkout, "ran-next-build")), "next build ran").toBe(false);
      expect(r.stderr.trimEnd().split("\n")).toEqual(["start: invalid configuration:", expect.stringMatching(/^ {2}- SYNAPSE_API_TOKEN is required when HOSTNAME=0\.0\.0\.0/)]);
    } finally {
      await rm(checkout, { recursive: true, force: true });
    }
  });

  it("stop() kills an app that does not exit by the deadline", async () => {
    const app = await startApp({ name: "frozen" });
    process.kill(app.pid, "SIGSTOP");
    const stopped = await app.stop("SIGTERM", { timeoutMs: 1000 });
    expect(stopped).toMatchObject({ killed: true, signal: "SIGKILL" });
    expect(app.running).toBe(false);
  });
});
