import { chmod, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { Client } from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sshExec, startSshd, type SshdFixture } from "./sshd.ts";

// The fixture itself: a real sshd forcing a trivial command, reached with ssh2.
describe("sshd fixture", () => {
  let sshd: SshdFixture;
  let dir = "";

  beforeAll(async () => {
    const { mkdtemp } = await import("node:fs/promises");
    const os = await import("node:os");
    dir = await mkdtemp(path.join(os.tmpdir(), "synapse-forced-"));
    const script = path.join(dir, "echo-command.sh");
    await writeFile(script, '#!/bin/bash\nprintf "forced:%s\\n" "${SSH_ORIGINAL_COMMAND-<none>}"\n');
    await chmod(script, 0o755);
    sshd = await startSshd({ forcedCommand: script });
  });
  afterAll(async () => {
    await sshd?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("runs the forced command whatever the client asks for", async () => {
    const r = await sshExec(sshd, "uname -a");
    expect(r).toMatchObject({ code: 0, stdout: "forced:uname -a\n" });
  });

  it("pins: the host key ssh2 sees is the fixture's", async () => {
    const { createHash } = await import("node:crypto");
    const seen = await new Promise<string>((resolve, reject) => {
      const c = new Client();
      let fp = "";
      c.once("error", reject);
      c.once("ready", () => {
        c.end();
        resolve(fp);
      });
      c.connect({
        host: sshd.host,
        port: sshd.port,
        username: sshd.user,
        privateKey: sshd.clientKey.privateKey,
        hostVerifier: (key: Buffer) => {
          fp = `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;
          return true;
        },
      });
    });
    expect(seen).toBe(sshd.hostFingerprint());
  });

  it("restarts on the same port and can change its host key", async () => {
    const port = sshd.port;
    const before = sshd.hostFingerprint();
    await sshd.stop();
    expect(sshd.running).toBe(false);
    await expect(sshExec(sshd, "x", { timeoutMs: 3000 })).rejects.toThrow();
    await sshd.regenerateHostKey();
    await sshd.start();
    expect(sshd.port).toBe(port);
    expect(sshd.hostFingerprint()).not.toBe(before);
    expect((await sshExec(sshd, "again")).stdout).toBe("forced:again\n");
  });
});
