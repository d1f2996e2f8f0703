/**
 * scripts/ssh-wrapper.sh as sshd runs it: the forced command of a
 * `restrict` key. What the key may do (the agent's verbs) and what it may not
 * (anything else, a shell, a pty, forwarding).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { Client } from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../test/harness/ports.ts";
import { specFor, testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { llamaServerBin } from "../../test/harness/llama-server.ts";
import { installWrapper, type InstalledWrapper } from "../../test/harness/ssh-wrapper.ts";
import { sshdLinkConfig, sshExec, startSshd, type SshdFixture } from "../../test/harness/sshd.ts";
import { tinyModel } from "../../test/harness/tiny-model.ts";
import { pidsRunning } from "./link-behaviour.ts";
import { createSshLink } from "./ssh.ts";
import { silentLinkLog } from "./types.ts";

const REFUSAL = "synapse ssh-wrapper: command not allowed (allowed: agent, start-metal-servers, stop-metal-servers, status, ping, channels)\n";

let dirs: TestDirs;
let wrapper: InstalledWrapper;
let sshd: SshdFixture;
let canaryDir: string;
let canary: string;

beforeAll(async () => {
  dirs = await testDirs("synapse-wrapper-");
  wrapper = await installWrapper(path.join(dirs.root, "wrapper"), {
    SYNAPSE_STATE_DIR: dirs.stateDir,
    SYNAPSE_MODEL_ROOTS: dirs.modelRoot,
    LLAMA_SERVER_BIN: llamaServerBin(),
    SYNAPSE_LOG_LEVEL: "warn",
  });
  sshd = await startSshd({ forcedCommand: wrapper.path });
  canaryDir = path.join(dirs.root, "canary");
  await mkdir(canaryDir);
  canary = path.join(canaryDir, "canary.txt");
  await writeFile(canary, "untouched\n");
});

afterAll(async () => {
  await sshExec(sshd, "stop-metal-servers", { timeoutMs: 30_000 }).catch(() => {});
  await sshd?.dispose();
  await dirs?.cleanup();
});

async function auditLines(): Promise<string[]> {
  return (await readFile(wrapper.auditLog, "utf8").catch(() => "")).split("\n").filter(Boolean);
}

async function expectCanaryUntouched(): Promise<void> {
  expect(await readFile(canary, "utf8")).toBe("untouched\n");
  expect(existsSync(path.join(canaryDir, "pwned"))).toBe(false);
}

describe("ssh-wrapper refuses anything but its verbs", () => {
  // Each would touch the canary if any shell evaluated it.
  const hostile = (): [string, string | Buffer][] => [
    ["agent; id", `agent; touch ${canaryDir}/pwned`],
    ["agent && id", `agent && touch ${canaryDir}/pwned`],
    ["$(id)", `$(touch ${canaryDir}/pwned)`],
    ["backticks", `\`touch ${canaryDir}/pwned\``],
    ["a pipe", `status | tee ${canaryDir}/pwned`],
    ["a newline", `ping\ntouch ${canaryDir}/pwned`],
    ["../", "../scripts/ssh-wrapper.sh"],
    ["an 8 KB string", `ping${"A".repeat(8192)}`],
    ["an empty command", ""],
    ["non-UTF-8 bytes", Buffer.concat([Buffer.from("ping"), Buffer.from([0xff, 0xfe, 0x80])])],
    ["ping with a trailing space", "ping "],
    ["status --json; rm -rf <dir>", `status --json; rm -rf ${canaryDir}`],
    ["a redirect", `status > ${canary}`],
    ["a path", "/bin/sh"],
  ];

  for (const [label, index] of hostile().map(([l], i) => [l, i] as const)) {
    it(`refuses ${label}`, async () => {
      const command = hostile()[index]![1];
      const before = await auditLines();
      const r = await sshExec(sshd, command);
      expect(r).toEqual({ code: 1, signal: null, stdout: "", stderr: REFUSAL });
      await expectCanaryUntouched();
      const after = await auditLines();
      expect(after).toHaveLength(before.length + 1);
      const line = after.at(-1)!;
      expect(line).toMatch(/ verdict=refused user=root client=127\.0\.0\.1 present=yes bytes=\d+ command=/);
      // Escaped: one line, printable ASCII, bounded length.
      expect(line).toMatch(/^[\x20-\x7e]+$/);
      expect(line.length).toBeLessThan(1200);
    });
  }

  it("refuses a shell request (no command at all)", async () => {
    const before = await auditLines();
    const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
      const c = new Client();
      c.once("error", reject);
      c.once("ready", () => {
        c.shell(false, (err, stream) => {
          if (err) return reject(err);
          let out = "";
          let errText = "";
          let code: number | null = null;
          stream.on("data", (d: Buffer) => (out += d));
          stream.stderr.on("data", (d: Buffer) => (errText += d));
          stream.on("exit", (x: number) => (code = x));
          stream.on("close", () => {
            c.end();
            resolve({ code, out, err: errText });
          });
          stream.end(`touch ${canaryDir}/pwned\n`);
        });
      });
      c.connect({ host: sshd.host, port: sshd.port, username: sshd.user, privateKey: sshd.clientKey.privateKey });
    });
    expect(r).toEqual({ code: 1, out: "", err: REFUSAL });
    expect((await auditLines()).at(-1)).toMatch(/verdict=refused .* present=no bytes=0 command=''$/);
    await expectCanaryUntouched();
    expect(before.length + 1).toBe((await auditLines()).length);
  });

  it("gets no pty", async () => {
    const err = await new Promise<Error | null>((resolve, reject) => {
      const c = new Client();
      c.once("error", reject);
      c.once("ready", () => {
        c.exec("ping", { pty: true }, (e, stream) => {
          stream?.close();
          c.end();
          resolve(e ?? null);
        });
      });
      c.connect({ host: sshd.host, port: sshd.port, username: sshd.user, privateKey: sshd.clientKey.privateKey });
    });
    expect(err?.message).toMatch(/pseudo-terminal/i);
  });

  it("gets no port forwarding, either way", async () => {
    // A local service the key must not be able to reach through the tunnel.
    const server = net.createServer((s) => s.end("secret\n"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    const target = (server.address() as net.AddressInfo).port;
    try {
      const [outErr, inErr] = await new Promise<[Error | undefined, Error | undefined]>((resolve, reject) => {
        const c = new Client();
        c.once("error", reject);
        c.once("ready", () => {
          c.forwardOut("127.0.0.1", 0, "127.0.0.1", target, (e1, stream) => {
            stream?.close();
            c.forwardIn("127.0.0.1", 0, (e2) => {
              c.end();
              resolve([e1, e2]);
            });
          });
        });
        c.connect({ host: sshd.host, port: sshd.port, username: sshd.user, privateKey: sshd.clientKey.privateKey });
      });
      expect(outErr?.message).toMatch(/prohibited|denied|fail/i);
      expect(inErr?.message).toMatch(/unable|denied|fail/i);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe("ssh-wrapper runs the agent's verbs", () => {
  it("channels: allowed, written down, and nothing runs (no node, no agent), exit 0 at once", async () => {
    const r = await sshExec(sshd, "channels", { timeoutMs: 30_000 });
    expect(r).toMatchObject({ code: 0, stdout: "", stderr: "" });
    expect((await auditLines()).at(-1)).toMatch(/verdict=allowed .* command=channels$/);
  });

  it("ping and status", async () => {
    const ping = await sshExec(sshd, "ping", { timeoutMs: 30_000 });
    expect(ping.code).toBe(0);
    expect(ping.stdout).toMatch(/^pong host-agent /);
    const status = await sshExec(sshd, "status", { timeoutMs: 30_000 });
    expect(status.code).toBe(0);
    expect(Array.isArray(JSON.parse(status.stdout))).toBe(true);
    expect((await auditLines()).at(-1)).toMatch(/verdict=allowed .* command=status$/);
  });

  it("start-metal-servers / status / stop-metal-servers: the seed's verbs, with a real llama-server", async () => {
    const model = await tinyModel(dirs.modelRoot, "verbs.gguf");
    const spec = specFor("verbs", model, await freePort());
    // The control plane pushes the desired set over the link; the one-shot verb starts it.
    const link = createSshLink(sshdLinkConfig(sshd, "verbs"), { log: silentLinkLog });
    try {
      await new Promise<void>((resolve) => (link.state === "connected" ? resolve() : link.onStateChange((c) => c.state === "connected" && resolve())));
      expect(await link.call("apply", { specs: [spec] })).toEqual({ count: 1 });
    } finally {
      await link.close();
    }
    const start = await sshExec(sshd, "start-metal-servers", { timeoutMs: 60_000 });
    expect(start.code).toBe(0);
    const [pid] = await pidsRunning(model);
    expect(pid).toBeGreaterThan(0);
    expect((await fetch(`http://127.0.0.1:${spec.port}/health`)).status).toBe(200);

    const status = JSON.parse((await sshExec(sshd, "status", { timeoutMs: 30_000 })).stdout) as { id: string; state: string; pid: number }[];
    expect(status.find((s) => s.id === "verbs")).toMatchObject({ state: "ready", pid });

    const stop = await sshExec(sshd, "stop-metal-servers", { timeoutMs: 60_000 });
    expect(stop.code).toBe(0);
    expect(await pidsRunning(model)).toEqual([]);
  });
});

describe("ssh-wrapper under the login shells sshd uses (`$SHELL -c <command>`)", () => {
  function viaShell(shell: string, command: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(shell, ["-c", command], { env: { PATH: "/usr/bin:/bin", ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
      });
    });
  }

  for (const shell of ["/bin/bash", "/usr/bin/zsh", "/bin/sh"]) {
    it.skipIf(!existsSync(shell))(`${shell}: allows ping, refuses an injection`, async () => {
      const home = path.join(dirs.root, `home-${path.basename(shell)}`);
      await mkdir(home, { recursive: true });
      await writeFile(path.join(home, "keep"), "x");
      const ok = await viaShell(shell, wrapper.path, { HOME: home, USER: "root", SSH_ORIGINAL_COMMAND: "ping" });
      expect(ok.code).toBe(0);
      expect(ok.stdout).toMatch(/^pong /);
      // The literal from the issue, with HOME pointed at a scratch folder in case anything evaluated it.
      const bad = await viaShell(shell, wrapper.path, { HOME: home, USER: "root", SSH_ORIGINAL_COMMAND: "status --json; rm -rf ~" });
      expect(bad).toEqual({ code: 1, stdout: "", stderr: REFUSAL });
      expect((await stat(path.join(home, "keep"))).isFile()).toBe(true);
    });
  }

  it("the client's environment does not change what runs", async () => {
    const home = path.join(dirs.root, "home-env");
    await mkdir(home, { recursive: true });
    const r = await viaShell("/bin/bash", wrapper.path, {
      HOME: home,
      SSH_ORIGINAL_COMMAND: "ping",
      SYNAPSE_HOST_AGENT_BIN: "/bin/false",
      SYNAPSE_NODE: "/bin/false",
      SYNAPSE_AGENT_CMD: `touch ${canaryDir}/pwned`,
      BASH_ENV: `${canaryDir}/pwned-env`,
      LC_ALL: "tr_TR.UTF-8",
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^pong /);
    await expectCanaryUntouched();
  });

  it("refuses a config file it does not own or cannot parse, before running anything", async () => {
    const other = await installWrapper(path.join(dirs.root, "wrapper-bad"), {});
    await writeFile(other.confPath, "SYNAPSE_NODE=/usr/bin/node\nPATH=/tmp/evil\n");
    const r = await viaShell("/bin/bash", other.path, { HOME: dirs.root, SSH_ORIGINAL_COMMAND: "ping" });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown key PATH/);
  });
});
