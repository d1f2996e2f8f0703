/**
 * `npm start` passes SIGTERM on to the app. npm runs a package script as `sh -c "<script>"` and forwards
 * SIGTERM to that shell; Debian's sh (dash) dies of it without passing it on, so with a plain
 * `node … scripts/start.mjs` a `kill <npm's pid>` (a process manager, `kill %1`) left the app running,
 * orphaned, with every llama-server it manages. The script `exec`s node, so node is the shell's process
 * and gets the signal itself (then the app stops its servers: e2e/app-server.e2e.test.ts).
 *
 * The real npm runs the repository's own `start` script, in a temporary package whose scripts/start.mjs
 * is a stand-in for the app (it records the signal it gets): the test is about the script line and npm,
 * and the real app needs a production build to start.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { tempDir } from "./harness/temp";

const repo = path.resolve(import.meta.dirname, "..");
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

const STAND_IN_APP = `import fs from "node:fs";
fs.writeFileSync("app.pid", String(process.pid));
process.on("SIGTERM", () => { fs.writeFileSync("app.signal", "SIGTERM"); process.exit(0); });
setInterval(() => {}, 1000);
`;

async function until<T>(what: string, fn: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

const read = (file: string) => {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
};

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("npm start", () => {
  it("a SIGTERM to npm reaches the app's process (was: npm and its shell died, the app ran on orphaned)", async () => {
    const t = tempDir("synapse-npm-start-");
    cleanups.push(t.cleanup);
    const start = (JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8")) as { scripts: { start: string } }).scripts.start;
    fs.mkdirSync(path.join(t.dir, "scripts"));
    fs.writeFileSync(path.join(t.dir, "scripts", "start.mjs"), STAND_IN_APP);
    fs.writeFileSync(path.join(t.dir, "package.json"), JSON.stringify({ name: "stand-in-app", version: "0.0.0", private: true, type: "module", scripts: { start } }));

    const npm = spawn("npm", ["start"], { cwd: t.dir, stdio: "ignore" });
    const npmExited = new Promise<number | null>((resolve) => npm.once("exit", (code) => resolve(code)));
    let appPid: number | undefined;
    cleanups.push(() => {
      if (appPid !== undefined && alive(appPid)) process.kill(appPid, "SIGKILL");
      if (npm.exitCode === null && npm.signalCode === null) npm.kill("SIGKILL");
    });
    appPid = Number(await until("the app to start", () => read(path.join(t.dir, "app.pid")), 30_000));

    npm.kill("SIGTERM");
    const signal = await until("the app to get SIGTERM", () => read(path.join(t.dir, "app.signal")), 10_000).catch((e: Error) => e.message);
    expect(signal).toBe("SIGTERM");
    await until("the app to exit", () => (alive(appPid!) ? undefined : true), 10_000);
    await Promise.race([npmExited, sleep(10_000)]);
    expect(npm.exitCode !== null || npm.signalCode !== null).toBe(true);
  });
});
