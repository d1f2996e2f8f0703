import { execFileSync } from "node:child_process";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fingerprintOf } from "./host-key.ts";
import { parseOpenSshConfig, readOpenSshDir, recordKnownHost } from "./openssh-dir.ts";
import { LinkConfigError, parseSshLinkConfig } from "./ssh-config.ts";

let root: string;
let sshDir: string;
let hostPub: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "synapse-sshdir-"));
  sshDir = path.join(root, "host-api", ".ssh");
  await mkdir(sshDir, { recursive: true });
  execFileSync("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(sshDir, "id_ed25519")]);
  execFileSync("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(root, "hostkey")]);
  hostPub = (await readFile(path.join(root, "hostkey.pub"), "utf8")).trim();
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const seedConfig = `Host mac-host
    HostName host.docker.internal
    User alice
    IdentityFile ~/.ssh/id_ed25519
    StrictHostKeyChecking no
`;

describe("OpenSSH config parsing", () => {
  it("applies OpenSSH's first-value-wins and Host patterns", () => {
    const e = parseOpenSshConfig(
      ["User global", "Host other", "  HostName nope", "Host mac-* !mac-evil", "  HostName=\"mac.local\"", "  Port 2222", "  ProxyJump bastion", "Host *", "  HostName late", "  Port 22"].join("\n"),
      "mac-host",
    );
    expect(e).toMatchObject({ user: "global", hostName: "mac.local", port: "2222", ignored: ["ProxyJump bastion"] });
    expect(parseOpenSshConfig("Host mac-* !mac-evil\n HostName x\n", "mac-evil").hostName).toBeUndefined();
  });
});

describe("readOpenSshDir", () => {
  it("reads the seed's manual layout: key found in the folder, TOFU because StrictHostKeyChecking no", async () => {
    await writeFile(path.join(sshDir, "config"), seedConfig);
    const r = await readOpenSshDir(sshDir, { home: path.join(root, "elsewhere") });
    expect(r.identityFile).toBe(path.join(sshDir, "id_ed25519"));
    expect(r.config).toMatchObject({ name: "mac-host", host: "host.docker.internal", port: 22, username: "alice", hostKeyFingerprints: [], trustOnFirstUse: true });
    expect(() => parseSshLinkConfig(r.config)).not.toThrow();
  });

  it("pins the key from known_hosts and offers only its type", async () => {
    await writeFile(path.join(sshDir, "config"), "Host mac-host\n HostName host.docker.internal\n User alice\n Port 2200\n");
    const blob = hostPub.split(" ")[1]!;
    await writeFile(path.join(sshDir, "known_hosts"), `[host.docker.internal]:2200 ssh-ed25519 ${blob}\n`);
    const r = await readOpenSshDir(sshDir);
    expect(r.config.hostKeyFingerprints).toEqual([fingerprintOf(Buffer.from(blob, "base64"))]);
    expect(r.config.trustOnFirstUse).toBe(false);
    expect(r.config.hostKeyAlgorithms).toEqual(["ssh-ed25519"]);
  });

  it("without a pin or TOFU the link config is refused, naming the field", async () => {
    await writeFile(path.join(sshDir, "config"), "Host mac-host\n HostName h\n User alice\n");
    const r = await readOpenSshDir(sshDir);
    expect(() => parseSshLinkConfig(r.config)).toThrow(/hostKeyFingerprints/);
  });

  it("names missing pieces", async () => {
    await expect(readOpenSshDir(sshDir)).rejects.toThrow(/cannot read .*config/);
    await writeFile(path.join(sshDir, "config"), "Host mac-host\n User alice\n Port 99999\n IdentityFile nope\n");
    const err = await readOpenSshDir(sshDir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LinkConfigError);
    expect((err as LinkConfigError).issues.map((i) => i.path)).toEqual(["HostName", "Port", "IdentityFile"]);
  });

  it("records a trusted key so the next read pins it", async () => {
    await writeFile(path.join(sshDir, "config"), seedConfig);
    const r1 = await readOpenSshDir(sshDir);
    const blob = Buffer.from(hostPub.split(" ")[1]!, "base64");
    await recordKnownHost(r1.knownHostsPath, { host: "host.docker.internal", port: 22, fingerprint: fingerprintOf(blob), keyType: "ssh-ed25519", knownHostsLine: `host.docker.internal ssh-ed25519 ${blob.toString("base64")}` });
    const r2 = await readOpenSshDir(sshDir);
    expect(r2.config.hostKeyFingerprints).toEqual([fingerprintOf(blob)]);
    expect(r2.config.trustOnFirstUse).toBe(false);
  });
});
