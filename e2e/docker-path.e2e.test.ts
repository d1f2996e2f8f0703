/**
 * The Docker + Metal path without Docker (this machine has no engine): the
 * production build run with docker-compose.yml's own environment for
 * USE_EXTERNAL_SERVERS=true (container paths mapped to temp folders), an
 * `host-api/.ssh`-style folder (config `Host mac-host`, id_ed25519,
 * known_hosts) and a real sshd whose authorized_keys forces the real
 * scripts/ssh-wrapper.sh, which runs the host agent with a real llama-server.
 * START ALL ENABLED through the seed's REST endpoint: every model ready.
 * SIGTERM (docker stop): every server stopped before the app exits.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDirs, type TestDirs } from "../host-agent/test/harness/fixtures";
import { freePorts } from "../host-agent/test/harness/ports";
import { installWrapper } from "../host-agent/test/harness/ssh-wrapper";
import { startSshd, type SshdFixture } from "../host-agent/test/harness/sshd";
import { tinyModel } from "../host-agent/test/harness/tiny-model";
import { killLeftoverServers, makeAppDirs, startApp, type AppServer } from "../test/harness/app-server";
import { loadCompose } from "../test/harness/docker-files";

const MODELS = ["tiny-metal-a", "tiny-metal-b"];

async function health(port: number): Promise<number | "down"> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) })).status;
  } catch {
    return "down";
  }
}

describe("Docker + Metal path: start-all over the real sshd link (production build, compose environment)", () => {
  let mac: TestDirs;
  let sshd: SshdFixture;
  let app: AppServer;
  let ports: number[];

  beforeAll(async () => {
    const bin = process.env.LLAMA_SERVER_BIN;
    if (!bin) throw new Error("LLAMA_SERVER_BIN is not set (the e2e global setup provides it)");
    // "The Mac": the agent's state and model folder, and the wrapper with its site config.
    mac = await testDirs("synapse-mac-");
    const wrapper = await installWrapper(path.join(mac.root, "repo-scripts"), {
      SYNAPSE_STATE_DIR: mac.stateDir,
      SYNAPSE_MODEL_ROOTS: mac.modelRoot,
      LLAMA_SERVER_BIN: bin,
    });
    sshd = await startSshd({ forcedCommand: wrapper.path });
    for (const name of MODELS) await tinyModel(mac.modelRoot, `${name}.gguf`);
    ports = await freePorts(MODELS.length);

    // host-api/.ssh as the seed's manual steps leave it (IdentityFile ~/.ssh/... resolves inside the folder), host key pinned.
    const dirs = await makeAppDirs("docker-path");
    await mkdir(dirs.sshDir, { recursive: true, mode: 0o700 });
    await writeFile(path.join(dirs.sshDir, "config"), `Host mac-host\n    HostName ${sshd.host}\n    Port ${sshd.port}\n    User ${sshd.user}\n    IdentityFile ~/.ssh/id_ed25519\n`);
    await writeFile(path.join(dirs.sshDir, "id_ed25519"), sshd.clientKey.privateKey, { mode: 0o600 });
    await writeFile(path.join(dirs.sshDir, "known_hosts"), `${sshd.knownHostsLine()}\n`);

    // The container's environment, from docker-compose.yml, with its paths mapped to this test's folders.
    const compose = loadCompose({ USE_EXTERNAL_SERVERS: "true", PRAXIS_MODEL_PATH: mac.modelRoot }).services.synapse!.environment;
    const containerPaths: Record<string, string> = {
      HOSTNAME: "127.0.0.1", // inside a container 0.0.0.0; here loopback is the published address
      DATABASE_URL: `file:${dirs.database}`,
      SYNAPSE_STATE_DIR: dirs.stateDir,
      SYNAPSE_SSH_DIR: dirs.sshDir,
      SYNAPSE_MODEL_ROOTS: dirs.modelRoot,
      LLAMA_SERVER_BIN: bin,
    };
    app = await startApp({ name: "docker-path", dirs, env: { ...compose, ...containerPaths } });
  });

  afterAll(async () => {
    await app?.dispose();
    await sshd?.dispose();
    if (mac) {
      killLeftoverServers(mac.stateDir);
      await mac.cleanup();
    }
  });

  it("START ALL ENABLED: every enabled model ready on the host, reached over ssh", async () => {
    const hosts = await app.trpc.query<{ id: string; name: string; linkKind: string }[]>("hosts.list");
    expect(hosts.status).toBe(200);
    const macHost = hosts.data!.find((h) => h.linkKind === "ssh");
    expect(macHost, JSON.stringify(hosts)).toMatchObject({ name: "mac-host" });

    for (const [i, name] of MODELS.entries()) {
      const created = await app.trpc.mutation("models.create", {
        name,
        hostId: macHost!.id,
        filePath: `/models/${name}.gguf`, // the registry's container path; the host's is PRAXIS_MODEL_PATH/...
        port: ports[i],
        enabled: true,
        ctxSize: 256,
        gpuLayers: 0,
        threads: 1,
        batchSize: 64,
        ubatchSize: 64,
        parallel: 1,
      });
      expect(created.status, JSON.stringify(created.error)).toBe(200);
    }

    const started = await app.json<{ ok: boolean; started: number; failed: number; results: { state: string }[] }>("/api/models/servers/start-all", { method: "POST" });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    expect(started.body).toMatchObject({ ok: true, started: MODELS.length, failed: 0 });
    expect(started.body.results.map((r) => r.state)).toEqual(MODELS.map(() => "ready"));
    for (const port of ports) expect(await health(port)).toBe(200);

    // The servers are the host agent's (its records, on "the Mac"), not the app's local agent.
    const status = await app.json<unknown>("/api/models/servers/status");
    expect(status.status).toBe(200);
    expect(JSON.stringify(status.body)).toContain("ready");
  });

  it("SIGTERM (docker stop): the app stops every server on the host, then exits 0", async () => {
    const stopped = await app.stop("SIGTERM");
    expect(stopped, stopped.stderr.slice(-2000)).toMatchObject({ code: 0, killed: false });
    for (const port of ports) expect(await health(port)).toBe("down");
    expect(killLeftoverServers(mac.stateDir)).toEqual([]);
  });
});
