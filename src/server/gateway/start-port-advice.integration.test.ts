/**
 * `npm start` (node scripts/start.mjs) with its PORT taken suggests a free port to use instead; that port is
 * never one a model on this machine is registered on (the model's next start would find the app there).
 * Before, it named the first port the OS would give, a model's or not. The start ends before any build
 * (the check before `next build`), so this runs the real script as a user does, against a real migrated
 * database and a real listener (python3's http.server, as in the report).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { canBind } from "synapse-host-agent/port";
import { freePort } from "../../../host-agent/test/harness/ports";
import { testDb, type TestDb } from "~/server/services/fleet/testing/db";
import { localModelPorts } from "./registered-ports";

const repo = path.resolve(import.meta.dirname, "../../..");
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill("SIGKILL");
});

/** A port P with P+1 and P+2 free too. */
async function portWithTwoFreeAbove(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const p = await freePort();
    if (p + 2 <= 65535 && (await canBind(p + 1, "127.0.0.1")) && (await canBind(p + 2, "127.0.0.1"))) return p;
  }
  throw new Error("no port with two free ports above it after 20 tries");
}

/** `python3 -m http.server PORT` on loopback, once it listens (10 s at most). */
async function hold(port: number): Promise<ChildProcess> {
  const child = spawn("python3", ["-m", "http.server", String(port), "--bind", "127.0.0.1"], { stdio: "ignore" });
  children.push(child);
  const deadline = Date.now() + 10_000;
  while (await canBind(port, "127.0.0.1")) {
    if (child.exitCode !== null) throw new Error(`python3 -m http.server ${port} exited (${child.exitCode})`);
    if (Date.now() > deadline) throw new Error(`python3 -m http.server did not listen on ${port} within 10 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return child;
}

/** `node scripts/start.mjs` with only these variables (and PATH, HOME); its exit code and stderr (60 s at most). */
function npmStart(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const childEnv: Record<string, string> = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", HOSTNAME: "127.0.0.1", ...env };
  const child = spawn(process.execPath, ["scripts/start.mjs"], { cwd: repo, env: childEnv as NodeJS.ProcessEnv, stdio: ["ignore", "ignore", "pipe"] });
  children.push(child);
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`start.mjs did not end within 60 s; stderr so far:\n${stderr}`)), 60_000);
    child.once("exit", (code) => (clearTimeout(t), resolve({ code, stderr })));
  });
}

describe("npm start with its port taken: the port it suggests is no model's", () => {
  let t: TestDb;
  beforeAll(() => {
    t = testDb("synapse-start-advice-");
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  it("skips the port of a model on a local host, and says whose it is; a model on an ssh host does not count", async () => {
    const port = await portWithTwoFreeAbove();
    const local = await t.db.host.create({ data: { name: "local", linkKind: "local" } });
    const mac = await t.db.host.create({ data: { name: "mac", linkKind: "ssh", sshHost: "mac.lan", sshUser: "me" } });
    await t.db.model.create({ data: { name: "synapse-tiny", hostId: local.id, filePath: "/models/tiny.gguf", port: port + 1 } });
    await t.db.model.create({ data: { name: "far-away", hostId: mac.id, filePath: "/models/far.gguf", port: port + 2 } });
    const holder = await hold(port);

    const r = await npmStart({ PORT: String(port), DATABASE_URL: `file:${t.file}` });
    expect(r.code).toBe(1);
    const [head, advice] = r.stderr.trimEnd().split("; stop that process");
    expect(head).toMatch(new RegExp(`^start: port ${port} is in use \\(by pid ${holder.pid}, \\S*python3 -m http\\.server ${port} --bind 127\\.0\\.0\\.1\\)$`));
    expect(advice).toBe(` or set PORT to a free port (e.g. PORT=${port + 2}, free now; ${port + 1} is model synapse-tiny's)`);
  });

  it("with no database yet (a first start): the next free port, and no database file made", async () => {
    const port = await portWithTwoFreeAbove();
    await hold(port);
    const missing = path.join(t.dir, "none", "synapse.db");
    const r = await npmStart({ PORT: String(port), DATABASE_URL: `file:${missing}` });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`set PORT to a free port (e.g. PORT=${port + 1}, free now)`);
    expect(existsSync(missing)).toBe(false);
    expect(localModelPorts(missing).ports.size).toBe(0);
  });
});
