/**
 * A gateway test's ssh host with one model on it: a real sshd on loopback
 * forcing the real scripts/ssh-wrapper.sh (the host's agent), the key line
 * scripts/setup-ssh.sh --model-ports writes for the model's one port, the
 * host and model rows in the fixture's registry. `dispose` closes the
 * gateway fixture first (its fleet stops what it runs), then the host, and
 * fails if a server of the model's file is still running.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { testDirs, type TestDirs } from "../../../../host-agent/test/harness/fixtures";
import { freePort } from "../../../../host-agent/test/harness/ports";
import { installHostWrapper } from "../../../../host-agent/test/harness/ssh-wrapper";
import { disposeSshHost, startSshd, type SshdFixture } from "../../../../host-agent/test/harness/sshd";
import { tinyModel } from "../../../../host-agent/test/harness/tiny-model";
import type { Host, Model } from "~/generated/prisma/client";
import { pidsRunning } from "~/server/services/fleet/testing/fixture";
import type { GatewayFixture } from "./gateway-fixture";

export interface SshModelHost {
  remote: TestDirs;
  sshd: SshdFixture;
  host: Host;
  model: Model;
  modelFile: string;
  /** The fixture, then sshd and the host's folders; throws naming the pids of the model's servers still running (killed first). */
  dispose(): Promise<void>;
}

/**
 * Registers host `hostName` (reached over the sshd started here) and, on it, model `modelName` (the tiny
 * model, file `<modelName>.gguf`) on a free port, with `modelFields` (e.g. its load policy).
 */
export async function sshModelHost(g: GatewayFixture, options: { prefix: string; hostName: string; modelName: string; modelFields?: Partial<Pick<Model, "loadPolicy">> }): Promise<SshModelHost> {
  const remote = await testDirs(options.prefix);
  const wrapper = await installHostWrapper(remote, { SYNAPSE_HEALTH_INTERVAL_MS: "500" });
  const port = await freePort();
  const sshd = await startSshd({ forcedCommand: wrapper.path, keyOptions: `restrict,port-forwarding,permitopen="127.0.0.1:${port}",permitlisten="NOWHERE:22",command="${wrapper.path}"` });
  const keyFile = path.join(remote.root, "id_ed25519");
  await mkdir(path.dirname(keyFile), { recursive: true });
  await writeFile(keyFile, sshd.clientKey.privateKey, { mode: 0o600 });
  const host = await g.f.t.db.host.create({
    data: { name: options.hostName, linkKind: "ssh", sshHost: "127.0.0.1", sshPort: sshd.port, sshUser: sshd.user, sshIdentityFile: keyFile, hostKeyFingerprint: sshd.hostFingerprint(), modelPorts: `${port}-${port}` },
  });
  const modelFile = await tinyModel(remote.modelRoot, `${options.modelName}.gguf`);
  const model = await g.f.t.db.model.create({ data: { name: options.modelName, hostId: host.id, filePath: modelFile, port, enabled: true, ...options.modelFields } });
  return {
    remote,
    sshd,
    host,
    model,
    modelFile,
    async dispose() {
      await g.dispose().catch(() => undefined);
      await disposeSshHost(sshd);
      const left = await pidsRunning(modelFile);
      for (const pid of left) process.kill(pid, "SIGKILL");
      await remote.cleanup();
      if (left.length) throw new Error(`processes left running: ${left.join(", ")}`);
    },
  };
}
