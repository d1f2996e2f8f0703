/**
 * scripts/quickstart.sh, the README's one-command quick start, run as a user
 * runs it (bash, from the repo) with a home folder of its own: which steps it
 * takes and which it skips. `npm` and `apt-get` are stand-ins on PATH that
 * record their arguments (a real `npm start` builds and serves the app for
 * minutes; the e2e suite covers that; `npm run model:tiny` is run for real, as
 * npm would run it), so what is checked is the script's own decisions and what
 * it prints: the tiny model only when ~/models has no .gguf, llama-server from
 * LLAMA_SERVER_BIN (the real one), `npm start` last, a clear stop before
 * it when llama-server cannot be had, and a closing hint that follows the
 * registry (DATABASE_URL: a file of the test's own, real SQLite).
 */
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { llamaServerBin } from "../host-agent/test/harness/llama-server";
import { openDatabase } from "../src/server/db/client";
import { upsertHost } from "../src/server/services/registry/hosts";
import { createModel, setModelEnabled } from "../src/server/services/registry/models";
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
    // The registry: the test's own file (none unless the test makes it), never the repo's ./data.
    const database = `file:${path.join(env.HOME ?? "/nonexistent", "data", "synapse.db")}`;
    execFile("bash", ["scripts/quickstart.sh"], { cwd: repo, env: { ...clean, STAND_IN_TSX: tsx, DATABASE_URL: database, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

/** A HOME of its own (removed after the test) with the stand-in commands; `withModel`: ~/models holds a .gguf already. */
function home(options: { withModel?: boolean } = {}): { t: ReturnType<typeof tempDir>; s: ReturnType<typeof standIns> } {
  const t = tempDir("synapse-quickstart-");
  cleanups.push(t.cleanup);
  const s = standIns(t.dir);
  if (options.withModel) {
    fs.mkdirSync(path.join(t.dir, "models"));
    fs.writeFileSync(path.join(t.dir, "models", "mine.gguf"), "");
  }
  return { t, s };
}

describe("scripts/quickstart.sh", () => {
  it("with no model in ~/models: writes the tiny model, then starts the app with the llama-server it was given", async () => {
    const { t, s } = home();
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
    // No registry yet: the way to a first model.
    expect(r.stderr).toMatch(/prints the address to open once it answers; then Discover → Scan for models → Enable → START ALL ENABLED\n/);
  });

  it("a second run, models registered and stopped at the last shutdown: says how many are enabled and what starts them, not Discover", async () => {
    const { t, s } = home({ withModel: true });
    // What the app leaves: two models, one enabled, both stopped as it shut down (fleet.shutdown, cause "shutdown").
    const file = path.join(t.dir, "data", "synapse.db");
    const db = openDatabase(file);
    try {
      const hostId = (await upsertHost(db, { name: "local", linkKind: "local" })).id;
      const a = await createModel(db, { name: "alpha", hostId, filePath: path.join(t.dir, "models", "a.gguf"), port: 8301 }, { appPort: 3000 });
      await createModel(db, { name: "bravo", hostId, filePath: path.join(t.dir, "models", "b.gguf"), port: 8302 }, { appPort: 3000 });
      await setModelEnabled(db, { id: a.id, enabled: true });
      await db.serverState.updateMany({ data: { desired: "stopped", observed: "stopped", cause: "shutdown" } });
    } finally {
      await db.$disconnect();
    }
    const r = await quickstart({ HOME: t.dir, PATH: `${s.bin}:${process.env.PATH}`, LLAMA_SERVER_BIN: llamaServerBin(), DATABASE_URL: `file:${file}` });
    expect(r.code, r.stderr).toBe(0);
    expect(s.calls()).toEqual(["npm start"]);
    expect(r.stderr).toContain("then: the registry has 2 models, 1 enabled; 2 stopped when the app last shut down: START ALL ENABLED on the fleet page (or npm run synapse -- start-all) starts the 1 enabled\n");
    expect(r.stderr).not.toContain("Discover");
  });

  it("with a model already in ~/models: writes nothing and starts the app", async () => {
    const { t, s } = home({ withModel: true });
    const r = await quickstart({ HOME: t.dir, PATH: `${s.bin}:${process.env.PATH}`, LLAMA_SERVER_BIN: llamaServerBin() });
    expect(r.code, r.stderr).toBe(0);
    expect(s.calls()).toEqual(["npm start"]);
  });

  it("a LLAMA_SERVER_BIN that is not a program: stops with the build script's reason, before starting anything", async () => {
    const { t, s } = home();
    const r = await quickstart({ HOME: t.dir, PATH: `${s.bin}:${process.env.PATH}`, LLAMA_SERVER_BIN: path.join(t.dir, "no-such-llama-server") });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`LLAMA_SERVER_BIN=${path.join(t.dir, "no-such-llama-server")} is not an executable file`);
    expect(s.calls()).toEqual([]);
  });
});
