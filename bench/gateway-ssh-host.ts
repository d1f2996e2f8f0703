/**
 * bench/gateway.ts's ssh leg: a host reached over a real sshd on loopback,
 * set up as a user would (scripts/setup-ssh.sh --model-ports's key line,
 * the real scripts/ssh-wrapper.sh running the host agent), registered in
 * the app through its tRPC API, with a model on it: the same tiny file and
 * settings as the local leg's model, served by the host's agent on a port
 * of its own. The gateway reaches it through a channel on the host's ssh
 * connection (host-agent/src/link/ssh-tunnel.ts).
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "../host-agent/test/harness/ports.ts";
import { installWrapper } from "../host-agent/test/harness/ssh-wrapper.ts";
import { sshExec, startSshd, type SshdFixture } from "../host-agent/test/harness/sshd.ts";

export interface SshBenchHost {
  /** The model's registry name on the ssh host. */
  model: string;
  port: number;
  sshd: SshdFixture;
  dispose(): Promise<void>;
}

type Trpc = (proc: string, input: unknown) => Promise<{ result: { data: { id: string } } }>;

/**
 * Starts sshd + wrapper for a host whose agent serves from `modelsDir`,
 * registers host and model (`name`, file `file`) through `trpc`, starts the
 * model and waits until the gateway at `base` answers for it.
 */
export async function startSshBenchHost(options: { dir: string; bin: string; modelsDir: string; file: string; name: string; base: string; trpc: Trpc; modelFields: Record<string, unknown> }): Promise<SshBenchHost> {
  const { dir, trpc } = options;
  const wrapper = await installWrapper(path.join(dir, "ssh-host-wrapper"), {
    SYNAPSE_STATE_DIR: path.join(dir, "ssh-host-state"),
    SYNAPSE_MODEL_ROOTS: options.modelsDir,
    LLAMA_SERVER_BIN: options.bin,
    SYNAPSE_LOG_LEVEL: "warn",
  });
  const port = await freePort();
  // The line setup-ssh.sh --model-ports PORT writes.
  const sshd = await startSshd({ forcedCommand: wrapper.path, keyOptions: `restrict,port-forwarding,permitopen="127.0.0.1:${port}",permitlisten="NOWHERE:22",command="${wrapper.path}"` });
  try {
    const keyFile = path.join(dir, "ssh-host-key");
    await writeFile(keyFile, sshd.clientKey.privateKey, { mode: 0o600 });
    const host = await trpc("hosts.upsert", {
      name: "bench-ssh",
      linkKind: "ssh",
      sshHost: "127.0.0.1",
      sshPort: sshd.port,
      sshUser: sshd.user,
      sshIdentityFile: keyFile,
      hostKeyFingerprint: sshd.hostFingerprint(),
      upstreamMode: "tunnel",
      modelPorts: String(port),
    });
    const model = await trpc("models.create", { ...options.modelFields, name: options.name, hostId: host.result.data.id, filePath: options.file, port });
    await trpc("servers.start", { id: model.result.data.id });
    const body = JSON.stringify({ model: options.name, messages: [{ role: "user", content: "hi" }], max_tokens: 2, grammar: "root ::= [a-z]+" });
    const deadline = Date.now() + 120_000;
    for (;;) {
      const r = await fetch(`${options.base}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body }).catch(() => null);
      if (r?.status === 200) break;
      const text = await r?.text().catch(() => "");
      if (Date.now() > deadline) throw new Error(`the ssh host's model did not answer through the gateway in 120 s: ${r?.status ?? "no answer"} ${text?.slice(0, 300)}`);
      await sleep(200);
    }
  } catch (err) {
    await sshd.dispose();
    throw err;
  }
  return {
    model: options.name,
    port,
    sshd,
    async dispose() {
      // The app stops its servers on SIGTERM; whatever the host's agent still runs is stopped by its own verb.
      await sshExec(sshd, "stop-metal-servers", { timeoutMs: 30_000 }).catch(() => undefined);
      await sshd.dispose();
    },
  };
}
