/**
 * The port check under both rule sets. Linux's own rules are exercised by the
 * supervisor tests; here the macOS rules (a bind test that may succeed beside
 * another listener, completed by connect tests) run on Linux, against real
 * listeners in another process. lsof, which names the holder on macOS, is the
 * same tool here.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../../test/harness/ports.ts";
import { addressesToProbe, canBind, describeHolder, portHolder } from "./port.ts";

const holders: ChildProcess[] = [];
afterEach(() => {
  for (const h of holders.splice(0)) h.kill("SIGKILL");
});

/** Another process listening on host:port (the test's stand-in for "some other program"). */
function listenElsewhere(port: number, host: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["-e", `require("node:net").createServer().listen(${port}, ${JSON.stringify(host)}, () => console.log("up"))`], { stdio: ["ignore", "pipe", "inherit"] });
  holders.push(child);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("listener did not come up within 10 s")), 10_000);
    child.stdout!.once("data", () => (clearTimeout(t), resolve(child)));
    child.once("exit", (code) => (clearTimeout(t), reject(new Error(`listener exited (${code})`))));
  });
}

const externalIPv4 = Object.values(os.networkInterfaces()).flat().find((a) => a && a.family === "IPv4" && !a.internal)?.address;

describe("port check, macOS rules", () => {
  it("a free port is free for a loopback and a wildcard bind", async () => {
    const port = await freePort();
    expect(await portHolder(port, "127.0.0.1", "darwin")).toBeNull();
    expect(await portHolder(port, "0.0.0.0", "darwin")).toBeNull();
  });

  it("a wildcard listener holds the port for a loopback bind, and lsof names it", async () => {
    const port = await freePort();
    const holder = await listenElsewhere(port, "0.0.0.0");
    expect(await portHolder(port, "127.0.0.1", "darwin")).toEqual({ port, pid: holder.pid, command: "node" });
  });

  it.skipIf(!externalIPv4)("a listener on this machine's network address holds the port for a wildcard bind, not for a loopback one", async () => {
    const port = await freePort();
    const holder = await listenElsewhere(port, externalIPv4!);
    expect((await portHolder(port, "0.0.0.0", "darwin"))?.pid).toBe(holder.pid);
    expect(await portHolder(port, "127.0.0.1", "darwin")).toBeNull();
  });

  it("lsof is only asked who holds a port, never whether it is free", async () => {
    // A stand-in named lsof (it only records that it ran, and finds nothing) first on PATH.
    const dir = await mkdtemp(path.join(os.tmpdir(), "synapse-lsof-"));
    const ran = path.join(dir, "ran");
    await writeFile(path.join(dir, "lsof"), `#!/bin/sh\n# stand-in for lsof: records the call\necho "$*" >> "${ran}"\nexit 1\n`, { mode: 0o755 });
    const savedPath = process.env.PATH;
    process.env.PATH = `${dir}${path.delimiter}${savedPath}`;
    try {
      const port = await freePort();
      expect(await portHolder(port, "127.0.0.1", "darwin")).toBeNull();
      expect(await portHolder(port, "0.0.0.0", "darwin")).toBeNull();
      expect(existsSync(ran)).toBe(false);
      await listenElsewhere(port, "127.0.0.1");
      // Taken: lsof is asked who it is (this one cannot tell, so the holder is unknown).
      expect(await portHolder(port, "127.0.0.1", "darwin")).toEqual({ port, pid: null, command: null });
      expect(await readFile(ran, "utf8")).toContain(`-iTCP:${port}`);
    } finally {
      process.env.PATH = savedPath;
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("probes loopback, the bind address, and for a wildcard every address but link-local ones", () => {
    const nics = {
      lo0: [{ address: "127.0.0.1", family: "IPv4" }, { address: "::1", family: "IPv6" }],
      en0: [{ address: "192.168.1.20", family: "IPv4" }, { address: "fe80::1c2a:3bff:fe4c:5d6e", family: "IPv6" }, { address: "2001:db8::20", family: "IPv6" }],
    } as unknown as ReturnType<typeof os.networkInterfaces>;
    expect(addressesToProbe("0.0.0.0", nics).sort()).toEqual(["127.0.0.1", "192.168.1.20", "2001:db8::20", "::1"].sort());
    expect(addressesToProbe("192.168.1.20", nics).sort()).toEqual(["127.0.0.1", "192.168.1.20", "::1"].sort());
  });
});

describe("the holder's name, Linux rules", () => {
  /** A listener started as `argv` (a program of its own), up once it prints. */
  function holder(argv: string[], port: number): Promise<ChildProcess> {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    holders.push(child);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${argv[0]} did not listen on ${port} within 10 s`)), 10_000);
      const up = () => void canBind(port, "127.0.0.1").then((free) => (free ? setTimeout(up, 50) : (clearTimeout(t), resolve(child))));
      up();
      child.once("exit", (code) => (clearTimeout(t), reject(new Error(`${argv[0]} exited (${code})`))));
    });
  }

  it.skipIf(process.platform !== "linux")("a process title longer than the kernel's 15-character name is shown whole (Next's 'next-server (v16.4.6)', not 'next-server (v1')", async () => {
    const port = await freePort();
    const h = await holder([process.execPath, "-e", `process.title = "next-server (v16.4.6)"; require("node:net").createServer().listen(${port}, "127.0.0.1")`], port);
    expect(await readFile(`/proc/${h.pid}/comm`, "utf8")).toBe("next-server (v1\n");
    const found = await portHolder(port, "127.0.0.1", "linux");
    expect(found).toEqual({ port, pid: h.pid, command: "next-server (v16.4.6)" });
    expect(describeHolder(found!)).toBe(`port ${port} is held by pid ${h.pid} (next-server (v16.4.6))`);
  });

  const python = "/usr/bin/python3";
  it.skipIf(process.platform !== "linux" || !existsSync(python))("a program with a long file name is named by it (python3 run as synapse-holder-python3), a short one as the kernel names it", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "synapse-holder-"));
    try {
      const long = path.join(dir, "synapse-holder-python3");
      await symlink(python, long);
      const port = await freePort();
      const h = await holder([long, "-m", "http.server", "--bind", "127.0.0.1", String(port)], port);
      expect(await readFile(`/proc/${h.pid}/comm`, "utf8")).toBe("synapse-holder-\n");
      expect((await portHolder(port, "127.0.0.1", "linux"))?.command).toBe("synapse-holder-python3");

      const port2 = await freePort();
      await holder([python, "-m", "http.server", "--bind", "127.0.0.1", String(port2)], port2);
      expect((await portHolder(port2, "127.0.0.1", "linux"))?.command).toBe("python3");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(process.platform !== "linux")("a 15-character name that argv[0] does not extend is marked as cut", async () => {
    const port = await freePort();
    // The kernel's name set apart from argv[0] (Node sets both from the title; here argv[0] is then overwritten).
    const h = await holder([process.execPath, "-e", `process.title = "abcdefghijklmnopq"; require("node:fs").writeFileSync("/proc/self/comm", "zzzzzzzzzzzzzzz"); require("node:net").createServer().listen(${port}, "127.0.0.1")`], port);
    expect(await readFile(`/proc/${h.pid}/comm`, "utf8")).toBe("zzzzzzzzzzzzzzz\n");
    expect((await portHolder(port, "127.0.0.1", "linux"))?.command).toBe("zzzzzzzzzzzzzzz…");
  });
});
