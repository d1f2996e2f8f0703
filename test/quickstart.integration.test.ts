/**
 * scripts/quickstart.sh, the README's one-command quick start, run as a user
 * runs it (bash, from the repo) with a home folder of its own: which steps it
 * takes and which it skips. `npm` and `apt-get` are stand-ins on PATH that
 * record their arguments (a real `npm start` builds and serves the app for
 * minutes; the e2e suite covers that; `npm run model:tiny` is run for real, as
 * npm would run it), so what is checked is the script's own decisions and what
 * it prints: the tiny model only when ~/models has no .gguf, llama-server from
 * LLAMA_SERVER_BIN (the real one), `npm start` last, and a clear stop before
 * it when llama-server cannot be had.
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { llamaServerBin } from "../host-agent/test/harness/llama-server";
import { tempDir } from "./harness/temp";

const repo = path.resolve(import.meta.dirname, "..");
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

/**
 * A folder with stand-in `npm` and `apt-get` that append their argv to calls.log, and the build's
 * tools (looked up by the script, never run) so that what this machine has installed does not matter.
 * The stand-in npm runs `run --silent model:tiny` for real (package.json's `tsx scripts/write-tiny-model.ts`,
 * with the environment the script gives it), so what that prints is what a user sees.
 */
function standIns(dir: string): { bin: string; calls: () => string[] } {
  const bin = path.join(dir, "stand-in-bin");
  fs.mkdirSync(bin);
  const log = path.join(dir, "calls.log");
  for (const name of ["npm", "apt-get", "cmake", "g++", "git", "openssl"]) {
    fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n# stand-in-${name}: records its arguments\nprintf '%s %s\\n' "${name}" "$*" >> "${log}"\n`, { mode: 0o755 });
  }
  fs.appendFileSync(path.join(bin, "npm"), `if [ "$*" = "run --silent model:tiny" ]; then exec "$STAND_IN_TSX" scripts/write-tiny-model.ts; fi\n`);
  return { bin, calls: () => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : []) };
}

function quickstart(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const clean = { ...process.env };
    delete clean.SYNAPSE_MODEL_ROOTS;
    delete clean.SYNAPSE_QUICKSTART;
    const tsx = path.join(repo, "node_modules", ".bin", "tsx");
    execFile("bash", ["scripts/quickstart.sh"], { cwd: repo, env: { ...clean, STAND_IN_TSX: tsx, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

describe("scripts/quickstart.sh", () => {
  it("with no model in ~/models: writes the tiny model, then starts the app with the llama-server it was given", async () => {
    const t = tempDir("synapse-quickstart-");
    cleanups.push(t.cleanup);
    const s = standIns(t.dir);
    const r = await quickstart({ HOME: t.dir, PATH: `${s.bin}:${process.env.PATH}`, LLAMA_SERVER_BIN: llamaServerBin() });
    expect(r.code, r.stderr).toBe(0);
    expect(s.calls()).toEqual(["npm run --silent model:tiny", "npm start"]);
    expect(r.stderr).toContain(`llama-server: ${llamaServerBin()}`);
    expect(r.stderr).toContain("no model in");
    // No address before the app answers there: npm start builds first (minutes), then prints it itself.
    expect(r.stderr).not.toMatch(/https?:\/\//);
    expect(r.stderr).toContain("prints the address to open once it answers");
    // The model is written, and its next step is what the quick start does now, not a step left to the user.
    expect(fs.readdirSync(path.join(t.dir, "models"))).toEqual(["synapse-tiny.gguf"]);
    expect(r.stdout).toContain("Next: quickstart starts the app now (npm start)");
    expect(r.stdout).not.toContain("Next: start the app");
  });

  it("with a model already in ~/models: writes nothing and starts the app", async () => {
    const t = tempDir("synapse-quickstart-");
    cleanups.push(t.cleanup);
    const s = standIns(t.dir);
    fs.mkdirSync(path.join(t.dir, "models"));
    fs.writeFileSync(path.join(t.dir, "models", "mine.gguf"), "");
    const r = await quickstart({ HOME: t.dir, PATH: `${s.bin}:${process.env.PATH}`, LLAMA_SERVER_BIN: llamaServerBin() });
    expect(r.code, r.stderr).toBe(0);
    expect(s.calls()).toEqual(["npm start"]);
  });

  it("a LLAMA_SERVER_BIN that is not a program: stops with the build script's reason, before starting anything", async () => {
    const t = tempDir("synapse-quickstart-");
    cleanups.push(t.cleanup);
    const s = standIns(t.dir);
    const r = await quickstart({ HOME: t.dir, PATH: `${s.bin}:${process.env.PATH}`, LLAMA_SERVER_BIN: path.join(t.dir, "no-such-llama-server") });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`LLAMA_SERVER_BIN=${path.join(t.dir, "no-such-llama-server")} is not an executable file`);
    expect(s.calls()).toEqual([]);
  });
});
