/**
 * `docker-compose up -d`, for real: the image built from the Dockerfile
 * (scripts/podman/build-image.sh tags it synapse-engine:local, the compose
 * file's `image:`), run by Debian's docker-compose 1.29 against podman's
 * Docker API, with the repository's docker-compose.yml as it is and a `.env`
 * beside it. Each check is what a user would look at:
 *
 *   - /api/health on the published port, on loopback only
 *   - the app runs as `node`, not root
 *   - a tiny model in PRAXIS_MODEL_PATH (mounted at /models) registered,
 *     START ALL ENABLED (POST /api/models/servers/start-all) runs it on the
 *     image's CPU llama-server, which answers a completion
 *   - `docker-compose stop` stops every server within stop_grace_period, and
 *     the app's log says so
 *   - the registry survives `down` / `up` in the synapse-data volume
 *   - SYNAPSE_BIND=0.0.0.0 without a token: the app refuses to start and says why
 *   - USE_EXTERNAL_SERVERS=true with host-api/.ssh written by
 *     scripts/setup-ssh.sh for a real sshd on this machine ("the Mac"):
 *     START ALL ENABLED starts the servers there through the forced command,
 *     and `docker-compose stop` stops them there
 *
 * Needs root, podman (with runc and catatonit), docker-compose and the image;
 * `.ci/run` provides them (README "Run the container check").
 */
import { chown, readdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDirs, type TestDirs } from "../../host-agent/test/harness/fixtures";
import { installWrapper, type InstalledWrapper } from "../../host-agent/test/harness/ssh-wrapper";
import { freePort, startSshd, type SshdFixture } from "../../host-agent/test/harness/sshd";
import { tinyModel } from "../../host-agent/test/harness/tiny-model";
import { killLeftoverServers } from "../harness/app-server";
import { REPO_ROOT } from "../harness/app-build";
import { loadCompose } from "../harness/docker-files";
import { makeComposeProject, logRecords, readText, type ComposeProject } from "./compose-project";
import { IMAGE, connectEngine, hasImage, run, type PodmanService } from "./engine";

/** The uid of the official Node images' `node` user, which the image runs as. */
const NODE_UID = 1000;
/** Small, fast settings for the tiny model on a loaded 2-core machine. */
const TINY = { ctxSize: 256, gpuLayers: 0, threads: 1, batchSize: 64, ubatchSize: 64, parallel: 1 } as const;
/** The random-weight tiny model only produces valid text when constrained. */
const GRAMMAR = "root ::= [a-z]+";

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The compose file's stop_grace_period, in ms ("75s" → 75000). */
function stopGraceMs(): number {
  const raw = String(loadCompose({}).services.synapse!.raw.stop_grace_period);
  const m = /^(\d+)s$/.exec(raw);
  if (!m) throw new Error(`unexpected stop_grace_period: ${raw}`);
  return Number(m[1]) * 1000;
}

/** The IPv4 address an /etc/hosts text gives `name`, or null (podman 4.3 writes `host-gateway` literally). */
function hostAddress(hostsText: string, name: string): string | null {
  for (const line of hostsText.split("\n")) {
    const [addr, ...names] = line.trim().split(/\s+/);
    if (addr && names.includes(name) && /^\d+\.\d+\.\d+\.\d+$/.test(addr)) return addr;
  }
  return null;
}

/** A non-loopback IPv4 address of this machine (where a LAN client would connect). */
function lanAddress(): string {
  for (const addrs of Object.values(os.networkInterfaces())) for (const a of addrs ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  throw new Error("this machine has no non-loopback IPv4 address");
}

async function status(url: string, timeoutMs = 3000): Promise<number | "down"> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })).status;
  } catch {
    return "down";
  }
}

/** Waits (deadline) until the app answers /api/health with 200. */
async function waitHealthy(port: number, project: ComposeProject, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await status(`http://127.0.0.1:${port}/api/health`)) === 200) return;
    if (Date.now() > deadline) throw new Error(`no 200 from /api/health on 127.0.0.1:${port} within ${timeoutMs} ms\n${(await project.logLines()).slice(-30).join("\n")}`);
    await delay(500);
  }
}

/** JSON over HTTP to the published port, as curl would. */
async function api<T>(port: number, pathname: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await fetch(`http://127.0.0.1:${port}${pathname}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(120_000),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

/** A tRPC procedure over HTTP (what the dashboard calls). */
async function trpc<T>(port: number, procedure: string, input?: unknown, mutation = false): Promise<T> {
  const r = mutation
    ? await api<{ result?: { data: T }; error?: unknown }>(port, `/api/trpc/${procedure}`, input ?? {})
    : await api<{ result?: { data: T }; error?: unknown }>(port, `/api/trpc/${procedure}${input === undefined ? "" : `?input=${encodeURIComponent(JSON.stringify(input))}`}`);
  if (r.status !== 200 || !r.body.result) throw new Error(`${procedure}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.result.data;
}

interface StartAll {
  ok: boolean;
  started: number;
  failed: number;
  results: { name?: string; state: string; error?: string | null }[];
}

/** The image's Node, inside the running container: a completion from the in-container llama-server. */
const COMPLETION_SCRIPT = `
const [port, grammar] = process.argv.slice(1);
fetch("http://127.0.0.1:" + port + "/completion", {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ prompt: "hello", n_predict: 8, grammar }),
  signal: AbortSignal.timeout(60000),
}).then(async (r) => { console.log(JSON.stringify({ status: r.status, body: await r.json() })); }, (e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(1); });
`;

/** The uids of every process in the container, read from /proc by the image's own Node. */
const PROCESS_UIDS_SCRIPT = `
const fs = require("fs");
const out = [];
for (const pid of fs.readdirSync("/proc").filter((n) => /^\\d+$/.test(n))) {
  try {
    const status = fs.readFileSync("/proc/" + pid + "/status", "utf8");
    const cmd = fs.readFileSync("/proc/" + pid + "/cmdline", "utf8").split("\\0").join(" ").trim();
    out.push({ pid: Number(pid), uid: Number(/^Uid:\\s+(\\d+)/m.exec(status)[1]), cmd });
  } catch {}
}
console.log(JSON.stringify(out));
`;

/** Files scripts/podman/build-image.sh mounts into the build's RUN steps; none may be in the image. */
const LEFTOVERS_SCRIPT = `
const fs = require("fs");
console.log(JSON.stringify(["/usr/local/etc/npmrc", "/run/synapse-build", "/root/.npmrc", "/home/node/.npmrc"].filter((p) => fs.existsSync(p))));
`;

describe("docker-compose up -d: the image and the compose file, run for real (docker-compose 1.29 against podman, or SYNAPSE_DOCKER_HOST)", () => {
  let engine: PodmanService;
  let engineDir: TestDirs;
  let project: ComposeProject;
  let port: number;
  const modelPort = 8091;
  let baseEnv: Record<string, string>;

  beforeAll(async () => {
    engineDir = await testDirs("synapse-engine-");
    engine = await connectEngine(engineDir.root);
    if (!(await hasImage(engine.socketPath, IMAGE))) throw new Error(`image ${IMAGE} not found: build it first (README "Run the container check": scripts/podman/build-image.sh or docker compose build)`);
    project = await makeComposeProject(engine, `synapseci${process.pid}`);
    await tinyModel(project.modelsDir, "tiny.gguf");
    port = await freePort();
    baseEnv = { SYNAPSE_PORT: String(port), PRAXIS_MODEL_PATH: project.modelsDir };
    await project.writeEnv(baseEnv);
  });

  afterAll(async () => {
    await project?.dispose();
    await engine?.stop();
    await engineDir?.cleanup();
  });

  it("up -d --no-build: /api/health answers on the published port, on loopback only", async () => {
    await project.composeOk(["up", "-d", "--no-build"]);
    await waitHealthy(port, project);
    const health = await api<{ status?: string }>(port, "/api/health");
    expect(health.status).toBe(200);
    // Published on 127.0.0.1 (SYNAPSE_BIND's default): nothing answers on this machine's LAN address.
    expect(await status(`http://${lanAddress()}:${port}/api/health`)).toBe("down");
  });

  it("runs as node, not root: every process in the container, and the image's USER", async () => {
    expect((await project.inspect()).Config.User).toBe("node");
    const r = await project.composeOk(["exec", "-T", "synapse", "node", "-e", PROCESS_UIDS_SCRIPT]);
    const procs = JSON.parse(r.stdout.trim()) as { pid: number; uid: number; cmd: string }[];
    expect(procs.some((p) => p.cmd.includes("scripts/start.mjs")), JSON.stringify(procs)).toBe(true);
    expect(procs.filter((p) => p.uid !== NODE_UID), JSON.stringify(procs)).toEqual([]);
  });

  it("the image keeps nothing of the build's registry access (npmrc, CA mount)", async () => {
    const r = await project.composeOk(["exec", "-T", "synapse", "node", "-e", LEFTOVERS_SCRIPT]);
    expect(JSON.parse(r.stdout.trim())).toEqual([]);
  });

  it("START ALL ENABLED: the tiny model from PRAXIS_MODEL_PATH (/models) runs on the image's CPU llama-server and answers a completion through the gateway", async () => {
    const hosts = await trpc<{ id: string; name: string; linkKind: string }[]>(port, "hosts.list");
    const local = hosts.find((h) => h.linkKind === "local");
    expect(local, JSON.stringify(hosts)).toBeDefined();
    await trpc(port, "models.create", { name: "tiny-cpu", hostId: local!.id, filePath: "/models/tiny.gguf", port: modelPort, enabled: true, ...TINY }, true);

    const started = await api<StartAll>(port, "/api/models/servers/start-all", {});
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    expect(started.body).toMatchObject({ ok: true, started: 1, failed: 0 });
    expect(started.body.results.map((r) => r.state)).toEqual(["ready"]);

    // A client asks through the app's one endpoint (the gateway), on the published port; the gateway
    // sends the model server its key.
    const res = await fetch(`http://127.0.0.1:${port}/completion`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "tiny-cpu", prompt: "hello", n_predict: 8, grammar: GRAMMAR }),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    expect((JSON.parse(text) as { content?: string }).content).toMatch(/^[a-z]+$/);

    // The model server's own port, inside the container, answers no one without that key.
    const r = await project.composeOk(["exec", "-T", "synapse", "node", "-e", COMPLETION_SCRIPT, String(modelPort), GRAMMAR]);
    const direct = JSON.parse(r.stdout.trim()) as { status: number };
    expect(direct.status, r.stdout).toBe(401);
  });

  it("docker-compose stop: every server stopped within stop_grace_period (exit 0, not killed), and the log says so", async () => {
    const stopped = await project.composeOk(["stop"], stopGraceMs() + 60_000);
    expect(stopped.ms).toBeLessThan(stopGraceMs());
    const state = (await project.inspect()).State;
    expect(state).toMatchObject({ Running: false, ExitCode: 0 });
    const records = logRecords(await project.logLines());
    expect(records.find((r) => r.msg === "shutting down"), JSON.stringify(records.slice(-10))).toMatchObject({ signal: "SIGTERM" });
    expect(records.find((r) => r.msg === "stopped the managed servers"), JSON.stringify(records.slice(-10))).toMatchObject({ count: 1 });
  });

  it("the registry survives down / up in the synapse-data volume", async () => {
    await project.down();
    await project.composeOk(["up", "-d", "--no-build"]);
    await waitHealthy(port, project);
    const models = await trpc<{ name: string; filePath: string }[]>(port, "models.list");
    expect(models.map((m) => [m.name, m.filePath])).toEqual([["tiny-cpu", "/models/tiny.gguf"]]);
    await project.down();
  });

  it("SYNAPSE_BIND=0.0.0.0 without SYNAPSE_API_TOKEN: the app refuses to start and says what to set", async () => {
    await project.writeEnv({ ...baseEnv, SYNAPSE_BIND: "0.0.0.0" });
    try {
      await project.composeOk(["up", "-d", "--no-build"]);
      const deadline = Date.now() + 90_000;
      let lines: string[] = [];
      while (!(lines = await project.logLines()).some((l) => l.includes("SYNAPSE_API_TOKEN is required"))) {
        if (Date.now() > deadline) throw new Error(`no refusal in the log within 90 s:\n${lines.slice(-20).join("\n")}`);
        await delay(1000);
      }
      expect(lines.find((l) => l.includes("SYNAPSE_API_TOKEN is required"))).toContain(
        "SYNAPSE_API_TOKEN is required when SYNAPSE_PUBLISH_ADDRESS=0.0.0.0 (reachable beyond loopback); set a random string of 16+ characters",
      );
      expect(await status(`http://127.0.0.1:${port}/api/health`)).not.toBe(200);
    } finally {
      await project.down().catch(() => undefined);
      await project.writeEnv(baseEnv);
    }
  });

  describe("USE_EXTERNAL_SERVERS=true: the servers run on 'the Mac' (this machine) over SSH", () => {
    let mac: TestDirs;
    let wrapper: InstalledWrapper;
    let sshd: SshdFixture;
    let macPort: number;

    beforeAll(async () => {
      const bin = process.env.LLAMA_SERVER_BIN;
      if (!bin) throw new Error("LLAMA_SERVER_BIN is not set (scripts/build-llama-server.sh prints it; .ci/run exports it)");
      // A fresh install: an empty synapse-data volume, so the registry has only the Mac.
      await project.down(["-v"]);
      await project.writeEnv({ ...baseEnv, USE_EXTERNAL_SERVERS: "true" });
      await project.composeOk(["up", "-d", "--no-build"]);
      await waitHealthy(port, project);

      // "The Mac": its agent state, its model folder (PRAXIS_MODEL_PATH, the same folder the
      // container mounts at /models) and the repo's wrapper as the forced command.
      mac = await testDirs("synapse-mac-");
      wrapper = await installWrapper(path.join(mac.root, "repo-scripts"), { SYNAPSE_STATE_DIR: mac.stateDir, SYNAPSE_MODEL_ROOTS: project.modelsDir, LLAMA_SERVER_BIN: bin });
      const home = path.join(mac.root, "home");
      // The name the container knows this machine by, and its address there: Docker maps
      // host.docker.internal (the compose file's host-gateway); podman 4.3 leaves that line
      // unresolvable and names the network's gateway host.containers.internal.
      const hostsFile = (await project.composeOk(["exec", "-T", "synapse", "node", "-e", "process.stdout.write(require('fs').readFileSync('/etc/hosts','utf8'))"])).stdout;
      const macName = hostAddress(hostsFile, "host.docker.internal") ? "host.docker.internal" : "host.containers.internal";
      const gateway = hostAddress(hostsFile, macName) ?? (await project.gateway());
      sshd = await startSshd({ authorizedKeysFile: path.join(home, ".ssh", "authorized_keys"), listenAddress: gateway });
      const setup = await run(
        "bash",
        [path.join(REPO_ROOT, "scripts", "setup-ssh.sh"), "--user", sshd.user, "--hostname", macName, "--port", String(sshd.port), "--host-key", sshd.hostPublicKeyPath],
        { env: { ...process.env, HOME: home, SYNAPSE_HOST_API_DIR: project.sshDir, SYNAPSE_WRAPPER_PATH: wrapper.path }, timeoutMs: 30_000 },
      );
      expect(setup.code, setup.stdout + setup.stderr).toBe(0);
      // On Linux the container's `node` (uid 1000) reads the mounted folder: the files must be
      // its user's, as they are for a desktop user with uid 1000.
      for (const f of [project.sshDir, ...(await readdir(project.sshDir)).map((n) => path.join(project.sshDir, n))]) await chown(f, NODE_UID, NODE_UID);
      macPort = await freePort();
    });

    afterAll(async () => {
      await sshd?.dispose();
      if (mac) {
        killLeftoverServers(mac.stateDir);
        await mac.cleanup();
      }
    });

    it("START ALL ENABLED starts the server on the Mac side through the forced command", async () => {
      const hosts = await trpc<{ id: string; name: string; linkKind: string }[]>(port, "hosts.list");
      const macHost = hosts.find((h) => h.linkKind === "ssh");
      expect(macHost, JSON.stringify(hosts)).toMatchObject({ name: "mac-host" });
      await trpc(port, "models.create", { name: "tiny-mac", hostId: macHost!.id, filePath: "/models/tiny.gguf", port: macPort, enabled: true, ...TINY }, true);

      const started = await api<StartAll>(port, "/api/models/servers/start-all", {});
      expect(started.status, JSON.stringify(started.body)).toBe(200);
      expect(started.body).toMatchObject({ ok: true, failed: 0 });
      expect(started.body.results.map((r) => r.state)).toEqual(["ready"]);
      // It runs on this machine (the Mac's loopback), under the agent the wrapper started.
      expect(await status(`http://127.0.0.1:${macPort}/health`)).toBe(200);
      // The forced command let the agent's verb through, for the container (its address on the compose network).
      const containerAddress = (await project.inspect()).NetworkSettings.Networks[`${project.name}_default`]?.IPAddress;
      expect(containerAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      const allowed = (await readText(wrapper.auditLog)).split("\n").filter((l) => l.includes(" verdict=allowed "));
      expect(allowed.length, await readText(wrapper.auditLog)).toBeGreaterThan(0);
      expect(allowed.every((l) => l.includes(` client=${containerAddress} `)), allowed.join("\n")).toBe(true);
    });

    it("docker-compose stop: the app stops the Mac's server before it exits", async () => {
      const stopped = await project.composeOk(["stop"], stopGraceMs() + 60_000);
      expect(stopped.ms).toBeLessThan(stopGraceMs());
      expect((await project.inspect()).State).toMatchObject({ Running: false, ExitCode: 0 });
      expect(await status(`http://127.0.0.1:${macPort}/health`)).toBe("down");
      expect(killLeftoverServers(mac.stateDir)).toEqual([]);
      const records = logRecords(await project.logLines());
      expect(records.find((r) => r.msg === "stopped the managed servers"), JSON.stringify(records.slice(-10))).toMatchObject({ count: 1 });
    });
  });
});
