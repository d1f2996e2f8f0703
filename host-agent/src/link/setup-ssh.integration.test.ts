/**
 * scripts/setup-ssh.sh in a scratch HOME, then the link the app would build
 * from the host-api/.ssh folder it wrote, through a real sshd whose
 * authorized_keys is the one the script wrote.
 */
import { execFile } from "node:child_process";
import { mkdir, readFile, readdir, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { llamaServerBin } from "../../test/harness/llama-server.ts";
import { installWrapper, REPO_ROOT, type InstalledWrapper } from "../../test/harness/ssh-wrapper.ts";
import { startSshd, type SshdFixture } from "../../test/harness/sshd.ts";
import { createSshLinkFromOpenSshDir, readOpenSshDir } from "./openssh-dir.ts";
import { silentLinkLog } from "./types.ts";

const SCRIPT = path.join(REPO_ROOT, "scripts", "setup-ssh.sh");

let dirs: TestDirs;
let home: string;
let apiDir: string;
let wrapper: InstalledWrapper;
let sshd: SshdFixture;

/** Runs the script; `at`: another HOME and host-api/.ssh folder than the shared ones. */
function setup(args: string[], at: { home: string; apiDir: string } = { home, apiDir }): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      "/bin/bash",
      [SCRIPT, ...args],
      {
        timeout: 30_000,
        env: {
          PATH: "/usr/bin:/bin",
          HOME: at.home,
          USER: "root",
          SYNAPSE_HOST_API_DIR: at.apiDir,
          SYNAPSE_WRAPPER_PATH: wrapper.path,
          SYNAPSE_HOST_KEY_PUB: sshd.hostPublicKeyPath,
        },
      },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  dirs = await testDirs("synapse-setup-ssh-");
  home = path.join(dirs.root, "home");
  apiDir = path.join(dirs.root, "repo", "host-api", ".ssh");
  await mkdir(path.join(home, ".ssh"), { recursive: true });
  // An existing unrelated key must survive.
  await writeFile(path.join(home, ".ssh", "authorized_keys"), "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l2GKJl someone@else\n", { mode: 0o600 });
  wrapper = await installWrapper(path.join(dirs.root, "wrapper"), {
    SYNAPSE_STATE_DIR: dirs.stateDir,
    SYNAPSE_MODEL_ROOTS: dirs.modelRoot,
    LLAMA_SERVER_BIN: llamaServerBin(),
    SYNAPSE_LOG_LEVEL: "warn",
  });
  sshd = await startSshd({ authorizedKeysFile: path.join(home, ".ssh", "authorized_keys") });
});

afterAll(async () => {
  await sshd?.dispose();
  await dirs?.cleanup();
});

describe("scripts/setup-ssh.sh", () => {
  it("creates the key, the restricted line, the pin and the config; says what it did", async () => {
    const r = await setup(["--hostname", "127.0.0.1", "--port", String(sshd.port), "--user", sshd.user]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("key: created");
    expect(r.stdout).toContain(sshd.hostFingerprint());
    const pub = (await readFile(path.join(home, ".ssh", "synapse_host_api.pub"), "utf8")).trim().split(" ");
    const auth = (await readFile(path.join(home, ".ssh", "authorized_keys"), "utf8")).trim().split("\n");
    expect(auth).toEqual([expect.stringContaining("someone@else"), `restrict,command="${wrapper.path}" ${pub[0]} ${pub[1]} synapse-host-api`]);
    expect((await stat(path.join(apiDir, "id_ed25519"))).mode & 0o777).toBe(0o600);
    expect(await readFile(path.join(apiDir, "id_ed25519"), "utf8")).toBe(await readFile(path.join(home, ".ssh", "synapse_host_api"), "utf8"));
    expect(await readFile(path.join(apiDir, "config"), "utf8")).toMatch(/Host mac-host\n\s+HostName 127\.0\.0\.1\n\s+Port \d+\n\s+User root\n/);
    const backups = (await readdir(path.join(home, ".ssh"))).filter((f) => f.startsWith("authorized_keys.synapse-backup-"));
    expect(backups).toHaveLength(1);
  });

  it("the check command it prints verifies the host key against its pin and prints pong with the versions", async () => {
    const r = await setup(["--hostname", "127.0.0.1", "--port", String(sshd.port), "--user", sshd.user]);
    expect(r.code).toBe(0);
    // The old line, `ssh … root@localhost ping`, looked the key up under [localhost]:PORT, which the script does not pin: "Host key verification failed."
    const check = r.stdout.split("\n").find((l) => l.trim().startsWith("ssh "));
    expect(check, r.stdout).toContain(`'HostKeyAlias=[mac-host]:${sshd.port}'`);
    const ran = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile("/bin/bash", ["-c", check!.trim().replace(/^ssh /, "ssh -o BatchMode=yes -o ConnectTimeout=10 ")], { timeout: 30_000, env: { PATH: "/usr/bin:/bin", HOME: home } }, (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
    expect(ran.stderr).not.toContain("Host key verification failed");
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toMatch(/^pong host-agent \S+ protocol 1 /);
  });

  it("backs up only a file that existed with content: none for the authorized_keys it creates", async () => {
    const fresh = { home: path.join(dirs.root, "fresh-home"), apiDir: path.join(dirs.root, "fresh-repo", "host-api", ".ssh") };
    await mkdir(fresh.home, { recursive: true });
    const r = await setup(["--hostname", "127.0.0.1", "--port", String(sshd.port), "--user", sshd.user], fresh);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("backup:");
    // A trial found a 0-byte authorized_keys.synapse-backup-… beside the file the script had just created.
    expect((await readdir(path.join(fresh.home, ".ssh"))).filter((f) => f.includes("synapse-backup"))).toEqual([]);
    expect((await readdir(fresh.apiDir)).filter((f) => f.includes("synapse-backup"))).toEqual([]);
    expect(await readFile(path.join(fresh.home, ".ssh", "authorized_keys"), "utf8")).toMatch(/^restrict,command=.* synapse-host-api\n$/);
  });

  it("is idempotent: a second run changes nothing and backs nothing up", async () => {
    const before = await readFile(path.join(home, ".ssh", "authorized_keys"), "utf8");
    const r = await setup(["--hostname", "127.0.0.1", "--port", String(sshd.port), "--user", sshd.user]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("key: kept existing");
    expect(r.stdout).toContain("already has the restricted line");
    expect(await readFile(path.join(home, ".ssh", "authorized_keys"), "utf8")).toBe(before);
    expect((await readdir(path.join(home, ".ssh"))).filter((f) => f.startsWith("authorized_keys.synapse-backup-"))).toHaveLength(1);
  });

  it("replaces the seed's unrestricted line for the same key", async () => {
    const pub = (await readFile(path.join(home, ".ssh", "synapse_host_api.pub"), "utf8")).trim();
    const file = path.join(home, ".ssh", "authorized_keys");
    await writeFile(file, `${await readFile(file, "utf8")}command="/opt/homebrew/bin/bash /old/scripts/ssh-wrapper.sh" ${pub}\n`);
    const r = await setup(["--hostname", "127.0.0.1", "--port", String(sshd.port), "--user", sshd.user]);
    expect(r.code).toBe(0);
    const lines = (await readFile(file, "utf8")).trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines.filter((l) => l.includes(pub.split(" ")[1]!))).toEqual([expect.stringMatching(/^restrict,command=/)]);
  });

  it("refuses bad arguments, naming them", async () => {
    expect((await setup(["--port", "99999"])).stderr).toMatch(/--port must be 1-65535/);
    expect((await setup(["--user", "a b"])).stderr).toMatch(/--user must be a plain user name/);
  });

  it("the app reads what it wrote and reaches the agent through sshd with the pinned key", async () => {
    const read = await readOpenSshDir(apiDir, { home: path.join(dirs.root, "container-home") });
    expect(read.config).toMatchObject({ host: "127.0.0.1", port: sshd.port, username: sshd.user, hostKeyFingerprints: [sshd.hostFingerprint()], trustOnFirstUse: false });
    const link = await createSshLinkFromOpenSshDir(apiDir, { home: path.join(dirs.root, "container-home"), log: silentLinkLog });
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`link state ${link.state}`)), 20_000);
        const check = () => link.state === "connected" && (clearTimeout(t), resolve());
        link.onStateChange(check);
        check();
      });
      const hello = await link.call("hello", { protocolVersion: 1 });
      expect(hello.modelRoots).toEqual([dirs.modelRoot]);
      expect(await link.call("status", {})).toEqual([]);
    } finally {
      await link.close();
    }
  });
});
