/**
 * The key line scripts/setup-ssh.sh --model-ports writes, through a real
 * sshd (AllowTcpForwarding on, so only the key's options limit it): the key
 * reaches the model ports on the host's loopback through the app's link,
 * and nothing else; `-R` cannot listen anywhere; the forced command still
 * runs only the agent's verbs.
 */
import { execFile } from "node:child_process";
import { mkdir, readFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { Client } from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { llamaServerBin } from "../../test/harness/llama-server.ts";
import { installWrapper, REPO_ROOT, type InstalledWrapper } from "../../test/harness/ssh-wrapper.ts";
import { sshExec, startSshd, type SshdFixture } from "../../test/harness/sshd.ts";
import { createSshLinkFromOpenSshDir } from "./openssh-dir.ts";
import { createSshLink } from "./ssh.ts";
import { hasTcpTunnel } from "./ssh-tunnel.ts";
import type { HostLink } from "./types.ts";
import { silentLinkLog } from "./types.ts";

const SCRIPT = path.join(REPO_ROOT, "scripts", "setup-ssh.sh");

let dirs: TestDirs;
let home: string;
let apiDir: string;
let wrapper: InstalledWrapper;
let sshd: SshdFixture;
let model: net.Server;
let modelPort: number;
let secret: net.Server;
let secretPort: number;
let link: HostLink;

function listen(reply: string): Promise<[net.Server, number]> {
  const server = net.createServer((s) => s.end(reply));
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve([server, (server.address() as net.AddressInfo).port])));
}

function setup(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      "/bin/bash",
      [SCRIPT, ...args],
      { timeout: 30_000, env: { PATH: "/usr/bin:/bin", HOME: home, USER: "root", SYNAPSE_HOST_API_DIR: apiDir, SYNAPSE_WRAPPER_PATH: wrapper.path, SYNAPSE_HOST_KEY_PUB: sshd.hostPublicKeyPath } },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A raw ssh2 client with the key setup-ssh.sh made: what a stolen key could try. */
function withClient<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const c = new Client();
    c.once("error", reject);
    c.once("ready", () => {
      fn(c).then(
        (v) => {
          c.end();
          resolve(v);
        },
        (e: unknown) => {
          c.end();
          reject(e);
        },
      );
    });
    void readFile(path.join(home, ".ssh", "synapse_host_api"), "utf8").then((privateKey) => c.connect({ host: sshd.host, port: sshd.port, username: sshd.user, privateKey }));
  });
}

beforeAll(async () => {
  dirs = await testDirs("synapse-model-ports-");
  home = path.join(dirs.root, "home");
  apiDir = path.join(dirs.root, "repo", "host-api", ".ssh");
  await mkdir(path.join(home, ".ssh"), { recursive: true });
  wrapper = await installWrapper(path.join(dirs.root, "wrapper"), { SYNAPSE_STATE_DIR: dirs.stateDir, SYNAPSE_MODEL_ROOTS: dirs.modelRoot, LLAMA_SERVER_BIN: llamaServerBin(), SYNAPSE_LOG_LEVEL: "warn" });
  // The README's advice for the one thing the key line cannot close (Unix-socket listeners).
  sshd = await startSshd({ authorizedKeysFile: path.join(home, ".ssh", "authorized_keys"), extraConfig: ["AllowStreamLocalForwarding no"] });
  [model, modelPort] = await listen("model\n");
  [secret, secretPort] = await listen("secret\n");
  const r = await setup(["--hostname", "127.0.0.1", "--port", String(sshd.port), "--user", sshd.user, "--model-ports", `${modelPort}-${modelPort + 1}`]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  link = await createSshLinkFromOpenSshDir(apiDir, { home: path.join(dirs.root, "container-home"), log: silentLinkLog });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`link state ${link.state}`)), 20_000);
    const check = () => link.state === "connected" && (clearTimeout(t), resolve());
    link.onStateChange(check);
    check();
  });
}, 60_000);

afterAll(async () => {
  await link?.close();
  model?.close();
  secret?.close();
  await sshd?.dispose();
  await dirs?.cleanup();
});

async function readAll(s: NodeJS.ReadableStream): Promise<string> {
  let out = "";
  for await (const d of s) out += String(d);
  return out;
}

describe("setup-ssh.sh --model-ports: the key reaches the model ports and nothing else", () => {
  it("writes one permitopen per port and a permitlisten nothing matches", async () => {
    const auth = await readFile(path.join(home, ".ssh", "authorized_keys"), "utf8");
    expect(auth).toContain(`restrict,port-forwarding,permitopen="127.0.0.1:${modelPort}",permitopen="127.0.0.1:${modelPort + 1}",permitlisten="NOWHERE:${sshd.port}",command="${wrapper.path}" ssh-ed25519 `);
  });

  it("the app's link opens a channel to a model port on the host's loopback", async () => {
    if (!hasTcpTunnel(link)) throw new Error("the ssh link has no openTcp");
    const channel = await link.openTcp(modelPort);
    expect(await readAll(channel)).toBe("model\n");
  });

  it("a channel asked for while the link is still connecting waits for the connection; open channels are bounded", async () => {
    const fresh = await createSshLinkFromOpenSshDir(apiDir, { home: path.join(dirs.root, "container-home"), log: silentLinkLog, maxTunnelChannels: 1 });
    try {
      expect(fresh.state).toBe("connecting");
      if (!hasTcpTunnel(fresh)) throw new Error("the ssh link has no openTcp");
      const channel = await fresh.openTcp(modelPort, { timeoutMs: 20_000 });
      expect(fresh.openTunnels).toBe(1);
      // The bound: a second channel while one is open is refused, saying so.
      await expect(fresh.openTcp(modelPort)).rejects.toMatchObject({ code: "UNAVAILABLE", message: expect.stringContaining("the most allowed (1)") });
      expect(await readAll(channel)).toBe("model\n");
      // Closed both ways: no longer counted against the bound.
      const closed = new Promise((r) => channel.once("close", r));
      channel.destroy();
      await closed;
      expect(fresh.openTunnels).toBe(0);
    } finally {
      await fresh.close();
    }
  });

  it("a channel destroyed without its answer read (a stream's end seen first, a pooled one dropped, a client gone) closes and no longer counts against the bound", async () => {
    const fresh = await createSshLinkFromOpenSshDir(apiDir, { home: path.join(dirs.root, "container-home"), log: silentLinkLog, maxTunnelChannels: 1 });
    try {
      if (!hasTcpTunnel(fresh)) throw new Error("the ssh link has no openTcp");
      for (let i = 0; i < 3; i++) {
        // The server's reply and EOF come, and nobody reads them.
        const channel = await fresh.openTcp(modelPort, { timeoutMs: 20_000 });
        channel.destroy();
        const deadline = Date.now() + 5_000;
        while (fresh.openTunnels !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        expect(fresh.openTunnels).toBe(0);
      }
      // And the next channel is given (the bound is 1), with its answer whole.
      expect(await readAll(await fresh.openTcp(modelPort))).toBe("model\n");
    } finally {
      await fresh.close();
    }
  });

  it("a port outside the range is refused, and the error names the port and what to run", async () => {
    if (!hasTcpTunnel(link)) throw new Error("the ssh link has no openTcp");
    await expect(link.openTcp(secretPort)).rejects.toMatchObject({
      code: "BAD_REQUEST",
      message: expect.stringMatching(new RegExp(`does not permit port ${secretPort}\\b.*setup-ssh\\.sh --model-ports`)),
    });
    // The link itself is unharmed.
    expect(link.state).toBe("connected");
    expect(await link.call("status", {})).toEqual([]);
  });

  it("a tunnel-only link made from the link's connectionConfig (the gateway worker's own connection): a model port opens, no other port, the forced command runs only its channels verb (no agent), no call goes", async () => {
    if (!hasTcpTunnel(link) || !link.connectionConfig) throw new Error("the ssh link has no openTcp or connectionConfig");
    const auditBefore = await readFile(wrapper.auditLog, "utf8").catch(() => "");
    // The app's own link ran the agent through the wrapper, which wrote it down (so a run would show here).
    expect(auditBefore).toMatch(/verdict=allowed/);
    const own = createSshLink(link.connectionConfig(), { tunnelOnly: true, log: silentLinkLog });
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`tunnel-only link state ${own.state}`)), 20_000);
        const check = () => own.state === "connected" && (clearTimeout(t), resolve());
        own.onStateChange(check);
        check();
      });
      if (!hasTcpTunnel(own)) throw new Error("the tunnel-only link has no openTcp");
      expect(await readAll(await own.openTcp(modelPort))).toBe("model\n");
      await expect(own.openTcp(secretPort)).rejects.toMatchObject({ code: "BAD_REQUEST", message: expect.stringContaining(`does not permit port ${secretPort}`) });
      await expect(own.call("status", {})).rejects.toMatchObject({ code: "BAD_REQUEST", message: expect.stringContaining("no agent") });
      // The key's forced command (the wrapper, which logs every command it is given) ran once, for `channels` (the
      // session that makes sshd turn Nagle off; nothing runs), and never as the agent.
      const added = async () => (await readFile(wrapper.auditLog, "utf8").catch(() => "")).slice(auditBefore.length).split("\n").filter(Boolean);
      const deadline = Date.now() + 15_000;
      while ((await added()).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await added()).toEqual([expect.stringMatching(/verdict=allowed .*command=channels$/)]);
    } finally {
      await own.close();
    }
  });

  it("a raw client with the key reaches no other port, nor the model port by another name", async () => {
    const results = await withClient(async (c) => {
      const open = (host: string, port: number) =>
        new Promise<string>((resolve) => c.forwardOut("127.0.0.1", 0, host, port, (err, ch) => (err ? resolve(`refused: ${err.message}`) : readAll(ch).then((d) => resolve(`open: ${d.trim()}`)))));
      return { secret: await open("127.0.0.1", secretPort), sshd: await open("127.0.0.1", sshd.port), byName: await open("localhost", modelPort), allowed: await open("127.0.0.1", modelPort) };
    });
    expect(results).toEqual({ secret: expect.stringMatching(/^refused/), sshd: expect.stringMatching(/^refused/), byName: expect.stringMatching(/^refused/), allowed: "open: model" });
  });

  it("cannot listen with -R, on any address or port, nor on a Unix socket", async () => {
    const free = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const asks: [string, number][] = [["127.0.0.1", 0], ["127.0.0.1", free], ["localhost", free], ["", free], ["0.0.0.0", free], ["NOWHERE", sshd.port], ["nowhere", sshd.port], ["127.0.0.1", modelPort + 1]];
    const outcomes = await withClient(async (c) => {
      const out: string[] = [];
      for (const [h, p] of asks) out.push(await new Promise<string>((resolve) => c.forwardIn(h, p, (err, got) => resolve(err ? `${h}:${p} refused` : `${h}:${p} LISTENING on ${got}`))));
      out.push(await new Promise<string>((resolve) => c.openssh_forwardInStreamLocal(path.join(dirs.root, "stolen.sock"), (err) => resolve(err ? "unix refused" : "unix LISTENING"))));
      return out;
    });
    expect(outcomes).toEqual([...asks.map(([h, p]) => `${h}:${p} refused`), "unix refused"]);
  });

  it("the forced command still runs only the agent's verbs", async () => {
    const privateKey = await readFile(path.join(home, ".ssh", "synapse_host_api"), "utf8");
    const fixture = { host: sshd.host, port: sshd.port, user: sshd.user, clientKey: { ...sshd.clientKey, privateKey } };
    expect((await sshExec(fixture, "ping", { timeoutMs: 30_000 })).stdout).toMatch(/^pong /);
    expect((await sshExec(fixture, "id", { timeoutMs: 30_000 })).code).toBe(1);
  });

  it("refuses a bad range, naming it, and changes nothing", async () => {
    const before = await readFile(path.join(home, ".ssh", "authorized_keys"), "utf8");
    expect((await setup(["--model-ports", "9000-8000"])).stderr).toMatch(/--model-ports: the range starts above its end/);
    expect((await setup(["--model-ports", "8000-9000"])).stderr).toMatch(/1001 ports is more than 256/);
    expect((await setup(["--model-ports", "80;id"])).stderr).toMatch(/--model-ports must be a port or a range/);
    expect(await readFile(path.join(home, ".ssh", "authorized_keys"), "utf8")).toBe(before);
  });
});
