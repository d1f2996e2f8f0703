/**
 * `npm start` says, before anything listens, which Host names the app will answer when it is reachable
 * beyond loopback, and warns when SYNAPSE_ALLOWED_HOSTS is unset: `HOSTNAME=0.0.0.0` with a token alone
 * started, and then every request by the machine's LAN address got 403 "Host … is not allowed".
 *
 * The real scripts/start.mjs (its gateway bundle built by scripts/build-gateway.mjs, its configuration
 * check run as a program), with the app's port held by this test: start.mjs says what the check said,
 * then ends at its port check ("start: port … is in use"), before any build, as a user sees it.
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, holdPort } from "../host-agent/test/harness/ports";
import { tempDir } from "./harness/temp";

const repo = path.resolve(import.meta.dirname, "..");
const TOKEN = "a-token-of-sixteen-chars";
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type StartLine = { level: string; component: string; msg: string; acceptedHosts?: string[] };

/** Runs start.mjs with `vars` (and nothing else of this process's app settings) on a held port; its exit and its stderr lines. */
async function startOnHeldPort(vars: Record<string, string>): Promise<{ code: number | null; lines: string[]; said: StartLine[] }> {
  const port = await freePort();
  const held = await holdPort(port);
  cleanups.push(() => held.close());
  const t = tempDir("synapse-start-hosts-");
  cleanups.push(t.cleanup);
  // HOSTNAME is set explicitly in every case: shells and containers export the machine's name in it.
  // NODE_ENV: as start.mjs sets it (NodeJS.ProcessEnv, with Next's types, requires it).
  const env: NodeJS.ProcessEnv = { NODE_ENV: "production", PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? t.dir, PORT: String(port), DATABASE_URL: `file:${path.join(t.dir, "synapse.db")}`, SYNAPSE_STATE_DIR: path.join(t.dir, "state"), ...vars };
  const child = spawn(process.execPath, ["scripts/start.mjs"], { cwd: repo, env, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const deadline = setTimeout(() => child.kill("SIGKILL"), 90_000);
  const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
  clearTimeout(deadline);
  const lines = stderr.split("\n").filter(Boolean);
  const said = lines.flatMap((l) => {
    try {
      return [JSON.parse(l) as StartLine];
    } catch {
      return [];
    }
  });
  expect(lines[lines.length - 1], stderr).toMatch(new RegExp(`^start: port ${port} is in use`));
  expect(code).toBe(1);
  return { code, lines, said };
}

const aboutHosts = (said: StartLine[]) => said.filter((l) => l.component === "start" && /reachable beyond loopback/.test(l.msg));

describe("npm start beyond loopback: the Host names it answers", () => {
  it("HOSTNAME=0.0.0.0 with a token and no SYNAPSE_ALLOWED_HOSTS: a warning naming the accepted names and what to add", async () => {
    const { said } = await startOnHeldPort({ HOSTNAME: "0.0.0.0", SYNAPSE_API_TOKEN: TOKEN });
    const notes = aboutHosts(said);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatchObject({ level: "warn", acceptedHosts: ["localhost", "127.0.0.1", "[::1]"] });
    expect(notes[0]!.msg).toMatch(
      /^HOSTNAME=0\.0\.0\.0 is reachable beyond loopback, but requests are answered only when their Host is one of: localhost, 127\.0\.0\.1, \[::1\] \(SYNAPSE_ALLOWED_HOSTS is unset\); a request by this machine's LAN address or name \(such as http:\/\/\S+:\d+\) gets 403 until that name is in SYNAPSE_ALLOWED_HOSTS \(comma separated, no port\), e\.g\. SYNAPSE_ALLOWED_HOSTS=\S+; /,
    );
  });

  it("with SYNAPSE_ALLOWED_HOSTS: the names it answers, at info", async () => {
    const { said } = await startOnHeldPort({ HOSTNAME: "0.0.0.0", SYNAPSE_API_TOKEN: TOKEN, SYNAPSE_ALLOWED_HOSTS: "studio.local,192.0.2.2" });
    expect(aboutHosts(said)).toEqual([expect.objectContaining({ level: "info", acceptedHosts: ["localhost", "127.0.0.1", "[::1]", "studio.local", "192.0.2.2"] })]);
  });

  it("on loopback (HOSTNAME=127.0.0.1): nothing of the kind", async () => {
    const { said } = await startOnHeldPort({ HOSTNAME: "127.0.0.1" });
    expect(aboutHosts(said)).toEqual([]);
  });
});
