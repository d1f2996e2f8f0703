/**
 * `npm run model:tiny` (scripts/write-tiny-model.ts) as a child process, the
 * way the README's quick start runs it: the file it writes is found by the
 * agent's discovery and served by the real llama-server; a second run leaves
 * it alone; a folder it cannot create fails with the reason and writes nothing.
 */
import { execFile, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { discoverModels } from "../host-agent/src/discovery/discover";
import { llamaServerBin } from "../host-agent/test/harness/llama-server";
import { freePort } from "../host-agent/test/harness/ports";
import { tempDir } from "./harness/temp";

const repo = path.resolve(import.meta.dirname, "..");
const tsx = path.join(repo, "node_modules", ".bin", "tsx");
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(tsx, ["scripts/write-tiny-model.ts", ...args], { cwd: repo, env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

describe("npm run model:tiny", () => {
  it("writes a model that discovery finds and llama-server serves; a second run leaves it alone", async () => {
    const t = tempDir("synapse-tiny-cli-");
    cleanups.push(t.cleanup);
    const folder = path.join(t.dir, "models");
    // No argument: the first SYNAPSE_MODEL_ROOTS entry, created if missing.
    const first = await run([], { SYNAPSE_MODEL_ROOTS: `${folder}:${path.join(t.dir, "other")}` });
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const file = path.join(folder, "synapse-tiny.gguf");
    expect(first.stdout).toContain(`wrote ${file}`);
    expect(fs.readdirSync(folder)).toEqual(["synapse-tiny.gguf"]);

    const found = await discoverModels([folder]);
    expect(found).toHaveLength(1);
    // A 4096-token context, so a long stream or a queue of long requests can be tried with it (llama-server caps a slot's context to the model's).
    expect(found[0]).toMatchObject({ path: file, architecture: "llama", contextLength: 4096, error: null });

    const before = fs.statSync(file);
    const second = await run([folder]);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain("already there");
    const after = fs.statSync(file);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);

    // The model starts: the real llama-server answers /health on it.
    const port = await freePort();
    const child = spawn(llamaServerBin(), ["-m", file, "--host", "127.0.0.1", "--port", String(port), "-c", "256", "-t", "1"], { stdio: "ignore" });
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    try {
      const deadline = Date.now() + 60_000;
      let status = 0;
      while (Date.now() < deadline && status !== 200) {
        status = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status, () => 0);
        if (status !== 200) await sleep(50);
      }
      expect(status).toBe(200);
    } finally {
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(10_000).then(() => child.kill("SIGKILL"))]);
    }
  });

  it("names the app's address from PORT (or SYNAPSE_URL) in its next step, not always :3000", async () => {
    const t = tempDir("synapse-tiny-cli-");
    cleanups.push(t.cleanup);
    const byPort = await run([path.join(t.dir, "a")], { PORT: "3100", SYNAPSE_URL: "" });
    expect(byPort.code).toBe(0);
    // "open …" or "start the app …, then open …": whether something answers on :3100 or :3000 on this machine (next test).
    expect(byPort.stdout).toContain("open http://127.0.0.1:3100/discover,");
    const byDefault = await run([path.join(t.dir, "c")], { PORT: "", SYNAPSE_URL: "" });
    expect(byDefault.stdout).toContain("open http://127.0.0.1:3000/discover,");
    const byUrl = await run([path.join(t.dir, "b")], { PORT: "3100", SYNAPSE_URL: "http://mac-studio.local:3200/" });
    expect(byUrl.stdout).toContain("open http://mac-studio.local:3200/discover,");
  });

  it("says to open the app only when it answers there; otherwise to start it first (the quick start writes the model before the app's first build)", async () => {
    const t = tempDir("synapse-tiny-next-");
    cleanups.push(t.cleanup);
    const port = await freePort();
    const nothing = await run([path.join(t.dir, "a")], { PORT: String(port), SYNAPSE_URL: "", SYNAPSE_QUICKSTART: "" });
    expect(nothing.stdout).toContain(`Next: start the app (npm start; it prints its address once it answers), then open http://127.0.0.1:${port}/discover,`);
    // A stand-in for the running app's health route (the real app needs a production build: e2e covers it).
    const app = http.createServer((req, res) => {
      res.writeHead(req.url === "/api/health" ? 200 : 404, { "content-type": "application/json" });
      res.end('{"status":"ok"}');
    });
    await new Promise<void>((r) => app.listen(port, "127.0.0.1", r));
    cleanups.push(() => app.close());
    const answering = await run([path.join(t.dir, "b")], { PORT: String(port), SYNAPSE_URL: "" });
    expect(answering.stdout).toContain(`Next: open http://127.0.0.1:${port}/discover, press Scan for models`);
  });

  it("run by the quick start (SYNAPSE_QUICKSTART=1, which then runs npm start itself): says the quick start starts the app, not to start it", async () => {
    const t = tempDir("synapse-tiny-quickstart-");
    cleanups.push(t.cleanup);
    const port = await freePort();
    const r = await run([path.join(t.dir, "a")], { SYNAPSE_QUICKSTART: "1", PORT: String(port), SYNAPSE_URL: "" });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Next: quickstart starts the app now (npm start); once it prints its address, open http://127.0.0.1:${port}/discover, press Scan for models`);
    expect(r.stdout).not.toContain("Next: start the app");
  });

  it("says when the folder is not one the app scans (SYNAPSE_MODEL_ROOTS), and how to make it scan it; nothing when it is", async () => {
    const t = tempDir("synapse-tiny-roots-");
    cleanups.push(t.cleanup);
    const elsewhere = path.join(t.dir, "elsewhere");
    const outside = await run([elsewhere], { SYNAPSE_MODEL_ROOTS: path.join(t.dir, "models") });
    expect(outside.code).toBe(0);
    expect(outside.stdout).toContain(`start it with SYNAPSE_MODEL_ROOTS=${elsewhere}`);
    const inside = await run([path.join(t.dir, "models", "tiny")], { SYNAPSE_MODEL_ROOTS: `${path.join(t.dir, "other")}:${path.join(t.dir, "models")}` });
    expect(inside.code).toBe(0);
    expect(inside.stdout).not.toContain("SYNAPSE_MODEL_ROOTS");
    expect(inside.stdout).toMatch(/Next: (open|start the app)/);
  });

  it("never writes over an entry already named synapse-tiny.gguf, even one stat cannot follow (a dangling link)", async () => {
    const t = tempDir("synapse-tiny-cli-");
    cleanups.push(t.cleanup);
    const file = path.join(t.dir, "synapse-tiny.gguf");
    fs.symlinkSync(path.join(t.dir, "moved-away.gguf"), file);
    const res = await run([t.dir]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain("already there");
    expect(fs.lstatSync(file).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(file)).toBe(path.join(t.dir, "moved-away.gguf"));
    expect(fs.readdirSync(t.dir)).toEqual(["synapse-tiny.gguf"]);
  });

  it("a folder it cannot create: exit 1 with the reason, nothing written", async () => {
    const t = tempDir("synapse-tiny-cli-");
    cleanups.push(t.cleanup);
    const blocker = path.join(t.dir, "a-file");
    fs.writeFileSync(blocker, "not a folder");
    const res = await run([path.join(blocker, "models")]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`cannot create the model folder ${path.join(blocker, "models")}`);
    expect(fs.readdirSync(t.dir)).toEqual(["a-file"]);
  });
});
