/**
 * A real OpenSSH sshd for tests: its own folder, host key, config and
 * authorized_keys, listening on a free loopback port. Runs as the current
 * user (root in this environment) in the foreground (`-D -e`) so the fixture
 * owns the process and reaps it.
 *
 * Supports what the link tests need: stopping and starting again on the same
 * port (a dropped host), dropping live sessions with it (a real connection
 * loss, not just a closed listener), and a new host key (a replaced host).
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type { SshLinkConfigInput } from "../../src/link/ssh-config.ts";

export const SSHD_BIN = "/usr/sbin/sshd";

export interface SshdOptions {
  /** The forced command for the client key, as written into authorized_keys (absolute path). */
  forcedCommand?: string;
  /** Key options before the key; default `restrict,command="<forcedCommand>"`. */
  keyOptions?: string;
  /** Readiness deadline per start. */
  startTimeoutMs?: number;
  /** Use this authorized_keys file (e.g. one written by setup-ssh.sh) instead of writing one. */
  authorizedKeysFile?: string;
  /**
   * The IPv4 address to listen on (default 127.0.0.1). A container reaches
   * "the Mac" at its network's gateway address, which must be one of this
   * machine's addresses.
   */
  listenAddress?: string;
  /** More sshd_config lines (e.g. `AllowStreamLocalForwarding no`). */
  extraConfig?: string[];
}

export interface KeyPair {
  privateKeyPath: string;
  privateKey: string;
  /** `ssh-ed25519 AAAA... comment` */
  publicKey: string;
}

export interface SshdFixture {
  readonly dir: string;
  /** The host's public key file (what setup-ssh.sh reads as /etc/ssh/ssh_host_ed25519_key.pub). */
  readonly hostPublicKeyPath: string;
  /** The address sshd listens on (`listenAddress`, default 127.0.0.1). */
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly clientKey: KeyPair;
  /** Host public key line and its `SHA256:...` fingerprint (changes after regenerateHostKey). */
  hostPublicKey(): string;
  hostFingerprint(): string;
  /** A known_hosts line for this server (`[127.0.0.1]:port ssh-ed25519 AAAA...`). */
  knownHostsLine(): string;
  readonly logPath: string;
  readonly authorizedKeysPath: string;
  readonly running: boolean;
  start(): Promise<void>;
  /** Stops the listener and, by default, every live session (their sshd processes only). */
  stop(options?: { dropSessions?: boolean }): Promise<void>;
  regenerateHostKey(): Promise<void>;
  /** Pids of the sshd processes serving live sessions (to freeze one and test keepalives). */
  sessionPids(): Promise<number[]>;
  /** Stops, removes the folder. */
  dispose(): Promise<void>;
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

function run(file: string, args: string[], timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(" ")} failed: ${stderr || err.message}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

/**
 * A link's config that reaches `sshd` as its test client: its address, user and client key, trusting its host key
 * (the fingerprint as it is now). `name` is the host's name in the link's errors and logs; `extra` adds to it or
 * overrides (reconnect, keepalive).
 */
export function sshdLinkConfig(sshd: Pick<SshdFixture, "host" | "port" | "user" | "clientKey" | "hostFingerprint">, name: string, extra: Partial<SshLinkConfigInput> = {}): SshLinkConfigInput {
  return { name, host: sshd.host, port: sshd.port, username: sshd.user, privateKey: sshd.clientKey.privateKey, hostKeyFingerprints: [sshd.hostFingerprint()], ...extra };
}

export async function generateEd25519(filePath: string, comment: string): Promise<KeyPair> {
  await rm(filePath, { force: true });
  await rm(`${filePath}.pub`, { force: true });
  await run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", filePath]);
  return { privateKeyPath: filePath, privateKey: await readFile(filePath, "utf8"), publicKey: (await readFile(`${filePath}.pub`, "utf8")).trim() };
}

/** OpenSSH's fingerprint: SHA256 of the key blob, base64 without padding. */
export function fingerprintOfPublicKeyLine(line: string): string {
  const blob = line.trim().split(/\s+/)[1];
  if (!blob) throw new Error(`not a public key line: ${line}`);
  return `SHA256:${createHash("sha256").update(Buffer.from(blob, "base64")).digest("base64").replace(/=+$/, "")}`;
}

/** A port that was free a moment ago; sshd's own bind is the real check (start retries on a clash). */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** Resolves once something on the port speaks SSH; rejects at the deadline. */
async function waitForBanner(host: string, port: number, deadline: number, child: ChildProcess): Promise<void> {
  for (let wait = 10; ; wait = Math.min(wait * 2, 200)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`sshd exited early (code ${child.exitCode}, signal ${child.signalCode})`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port });
      const done = (v: boolean) => {
        socket.destroy();
        resolve(v);
      };
      socket.setTimeout(1000, () => done(false));
      socket.once("error", () => done(false));
      socket.once("data", (d) => done(d.toString("latin1").startsWith("SSH-2.0-")));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd did not answer on ${host}:${port} before the deadline`);
    await delay(wait);
  }
}

interface ProcEntry {
  pid: number;
  ppid: number;
  comm: string;
  state: string;
}

async function processTable(): Promise<ProcEntry[]> {
  const out: ProcEntry[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, "utf8");
      // comm may contain spaces and parentheses: split at the last ')'.
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const fields = stat.slice(close + 2).split(" ");
      out.push({ pid: Number(name), comm, state: fields[0] ?? "?", ppid: Number(fields[1]) });
    } catch {
      // Exited while we looked.
    }
  }
  return out;
}

/** Every sshd process under `root` (the per-connection and privilege-separated children). */
async function sshdDescendants(root: number): Promise<number[]> {
  const table = await processTable();
  const children = new Map<number, ProcEntry[]>();
  for (const p of table) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    for (const c of children.get(pid) ?? []) {
      // Only sshd processes: the agent and its llama-servers must survive a dropped link.
      if (c.comm.startsWith("sshd")) {
        found.push(c.pid);
        queue.push(c.pid);
      }
    }
  }
  return found;
}

async function waitGone(pids: number[], deadline: number): Promise<void> {
  for (;;) {
    const table = new Map((await processTable()).map((p) => [p.pid, p]));
    const alive = pids.filter((pid) => {
      const p = table.get(pid);
      return p !== undefined && p.state !== "Z";
    });
    if (alive.length === 0) return;
    if (Date.now() > deadline) throw new Error(`sshd processes ${alive.join(", ")} still alive after the deadline`);
    await delay(20);
  }
}

export async function startSshd(options: SshdOptions): Promise<SshdFixture> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "synapse-sshd-"));
  await chmod(dir, 0o755);
  await mkdir("/run/sshd", { recursive: true });
  const hostKeyPath = path.join(dir, "ssh_host_ed25519_key");
  const configPath = path.join(dir, "sshd_config");
  const authorizedKeysPath = options.authorizedKeysFile ?? path.join(dir, "authorized_keys");
  const pidPath = path.join(dir, "sshd.pid");
  const logPath = path.join(dir, "sshd.log");
  const startTimeoutMs = options.startTimeoutMs ?? 15_000;
  const user = os.userInfo().username;
  const listenAddress = options.listenAddress ?? "127.0.0.1";

  let hostKey = await generateEd25519(hostKeyPath, "synapse-test-host");
  const clientKey = await generateEd25519(path.join(dir, "client_ed25519"), "synapse-test-client");
  if (!options.forcedCommand && !options.authorizedKeysFile) throw new Error("startSshd needs forcedCommand or authorizedKeysFile");
  const keyOptions = options.keyOptions ?? `restrict,command="${options.forcedCommand}"`;
  if (!options.authorizedKeysFile) await writeFile(authorizedKeysPath, `${keyOptions} ${clientKey.publicKey}\n`, { mode: 0o600 });

  let port = await freePort(listenAddress);
  let child: ChildProcess | null = null;

  const writeConfig = () =>
    writeFile(
      configPath,
      [
        `Port ${port}`,
        `ListenAddress ${listenAddress}`,
        `HostKey ${hostKeyPath}`,
        `PidFile ${pidPath}`,
        `AuthorizedKeysFile ${authorizedKeysPath}`,
        "StrictModes no",
        "UsePAM no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password",
        // Server-side forwarding and ttys stay ON, so the tests prove that the
        // key's `restrict` option is what blocks them.
        "AllowTcpForwarding yes",
        "PermitTTY yes",
        "X11Forwarding no",
        "AcceptEnv LANG LC_* SYNAPSE_*",
        "LogLevel VERBOSE",
        "MaxStartups 100:30:200",
        ...(options.extraConfig ?? []),
        "",
      ].join("\n"),
    );

  const launch = async (): Promise<void> => {
    await writeConfig();
    const log = createWriteStream(logPath, { flags: "a" });
    await new Promise<void>((resolve) => log.once("open", () => resolve()));
    const proc = spawn(SSHD_BIN, ["-D", "-e", "-f", configPath], { stdio: ["ignore", log, log] });
    proc.once("exit", () => log.end());
    child = proc;
    try {
      await waitForBanner(listenAddress, port, Date.now() + startTimeoutMs, proc);
    } catch (err) {
      await stopChild(proc);
      const tail = (await readFile(logPath, "utf8").catch(() => "")).split("\n").slice(-10).join("\n");
      throw new Error(`sshd did not start on port ${port}: ${(err as Error).message}\n${tail}`, { cause: err });
    }
  };

  const stopChild = async (proc: ChildProcess, dropSessions = true): Promise<void> => {
    const pid = proc.pid;
    if (pid === undefined) return;
    const sessions = dropSessions ? await sshdDescendants(pid) : [];
    const exited = proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => proc.once("exit", () => r()));
    // SIGKILL for sessions: a host that vanishes does not say goodbye.
    for (const s of sessions) {
      try {
        process.kill(s, "SIGKILL");
      } catch {
        // already gone
      }
    }
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
    await waitGone(sessions, Date.now() + 10_000);
  };

  // A port that another process grabbed between freePort() and sshd's bind: try another.
  for (let attempt = 1; ; attempt++) {
    try {
      await launch();
      break;
    } catch (err) {
      if (attempt >= 3) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
      port = await freePort(listenAddress);
    }
  }

  const fixture: SshdFixture = {
    dir,
    hostPublicKeyPath: `${hostKeyPath}.pub`,
    host: listenAddress,
    get port() {
      return port;
    },
    user,
    clientKey,
    hostPublicKey: () => hostKey.publicKey,
    hostFingerprint: () => fingerprintOfPublicKeyLine(hostKey.publicKey),
    knownHostsLine: () => `[${listenAddress}]:${port} ${hostKey.publicKey.split(/\s+/).slice(0, 2).join(" ")}`,
    logPath,
    authorizedKeysPath,
    get running() {
      return child !== null && child.exitCode === null && child.signalCode === null;
    },
    async start() {
      if (fixture.running) return;
      // Same port, so clients reconnect to the address they know.
      await launch();
    },
    async stop(stopOptions) {
      if (!child) return;
      await stopChild(child, stopOptions?.dropSessions ?? true);
      child = null;
    },
    async regenerateHostKey() {
      hostKey = await generateEd25519(hostKeyPath, "synapse-test-host-replaced");
      if (fixture.running) {
        await fixture.stop();
        await fixture.start();
      }
    },
    async sessionPids() {
      const pid = child?.pid;
      return pid === undefined ? [] : sshdDescendants(pid);
    },
    async dispose() {
      await fixture.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return fixture;
}

export interface SshExecResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs one command over a fresh ssh2 connection to the fixture and collects
 * the result as data. `command` may be a Buffer to send bytes that are not
 * UTF-8. Every step has a deadline.
 */
export async function sshExec(
  fixture: Pick<SshdFixture, "host" | "port" | "user" | "clientKey">,
  command: string | Buffer,
  options: { stdin?: string; timeoutMs?: number; pty?: boolean } = {},
): Promise<SshExecResult> {
  const { Client } = await import("ssh2");
  const timeoutMs = options.timeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const client = new Client();
    const timer = setTimeout(() => {
      client.end();
      reject(new Error(`ssh exec did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (err: unknown) => {
      clearTimeout(timer);
      client.end();
      reject(err);
    };
    client.once("error", fail);
    client.once("ready", () => {
      // ssh2's types say string; its protocol layer accepts a Buffer as is.
      client.exec(command as string, options.pty ? { pty: true } : {}, (err, stream) => {
        if (err) return fail(err);
        let stdout = "";
        let stderr = "";
        let code: number | null = null;
        let signal: string | null = null;
        stream.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
        stream.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
        stream.on("exit", (c: number | null, s?: string) => {
          code = c;
          signal = s ?? null;
        });
        stream.on("close", () => {
          clearTimeout(timer);
          client.end();
          resolve({ code, signal, stdout, stderr });
        });
        if (options.stdin !== undefined) stream.end(options.stdin);
        else stream.end();
      });
    });
    client.connect({ host: fixture.host, port: fixture.port, username: fixture.user, privateKey: fixture.clientKey.privateKey, readyTimeout: timeoutMs });
  });
}

/**
 * A test's teardown of a host reached over `sshd`: every server its agent runs is stopped (the wrapper's
 * stop-metal-servers verb, 30 s at most, through an sshd started again if a test left it stopped; an error is
 * ignored), then the sshd is disposed. Nothing for undefined (a setup that failed before it).
 */
export async function disposeSshHost(sshd: SshdFixture | undefined): Promise<void> {
  if (!sshd) return;
  if (!sshd.running) await sshd.start().catch(() => undefined);
  await sshExec(sshd, "stop-metal-servers", { timeoutMs: 30_000 }).catch(() => undefined);
  await sshd.dispose();
}
