/** The link pool's checks of a host row, before any connection: what a user who filled in the Hosts form reads. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "~/server/log/logger";
import { generateEd25519 } from "../../../../host-agent/test/harness/sshd";
import { createLinkPool, registryPath, type LinkEnv, type LinkPool, type PoolHost } from "./links";

const env: LinkEnv = { SYNAPSE_MODEL_ROOTS: undefined, SYNAPSE_STATE_DIR: undefined, LLAMA_SERVER_BIN: undefined, SYNAPSE_SSH_DIR: "/nonexistent/ssh", SYNAPSE_SSH_HOST_ALIAS: "mac-host" };
const row: PoolHost = {
  id: "h1",
  name: "mac-mini",
  linkKind: "ssh",
  sshHost: "127.0.0.1",
  sshPort: 22,
  sshUser: "me",
  sshIdentityFile: "host-api/.ssh/id_ed25519",
  hostKeyFingerprint: null,
  hostModelsRoot: null,
  llamaServerBin: null,
};

let pool: LinkPool | null = null;
afterEach(async () => {
  await pool?.close();
  pool = null;
});

describe("a host's private key file", () => {
  it("a relative path is under the folder the app was started from (SYNAPSE_START_DIR), not the server's working folder", () => {
    expect(registryPath("host-api/.ssh/id_ed25519", { SYNAPSE_START_DIR: "/home/me/synapse" })).toBe("/home/me/synapse/host-api/.ssh/id_ed25519");
    expect(registryPath("/keys/id", { SYNAPSE_START_DIR: "/home/me/synapse" })).toBe("/keys/id");
    expect(registryPath("~/.ssh/id", { SYNAPSE_START_DIR: "/home/me/synapse" })).toBe(path.join(os.homedir(), ".ssh/id"));
  });
});

describe("an ssh host with no pinned host key", () => {
  it("says to pin it with the Hosts page's Pin this key (or the API), not a config field the app has no place for", async () => {
    pool = createLinkPool({ env, log: createLogger("links-test", "error") });
    // A key file that can be read: only the missing pin is in question.
    const dir = mkdtempSync(path.join(os.tmpdir(), "synapse-links-"));
    const keyFile = path.join(dir, "id_ed25519");
    writeFileSync(keyFile, "not checked before the pin\n", { mode: 0o600 });
    const err = await pool.get({ ...row, sshIdentityFile: keyFile }).then(
      () => null,
      (e: unknown) => e as { message: string; issues?: { path: string; message: string }[] },
    );
    expect(err?.message).toContain("no host key is pinned for host mac-mini");
    expect(err?.message).toContain("press Test connection on mac-mini's card");
    expect(err?.message).toContain("then press Pin this key");
    expect(err?.message).toContain("hosts.pinKey { id, fingerprint }");
    expect(err?.message).not.toContain("trustOnFirstUse");
    expect(err?.issues?.map((i) => i.path)).toContain("hostKeyFingerprint");
    rmSync(dir, { recursive: true, force: true });
  });

  it("the default host from the SSH folder, its key not in known_hosts: says to add it there (or accept-new), not trustOnFirstUse", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "synapse-links-ssh-"));
    await generateEd25519(path.join(dir, "id_ed25519"), "links-test");
    writeFileSync(path.join(dir, "config"), ["Host mac-host", "    HostName 127.0.0.1", "    User me", "    IdentityFile id_ed25519", ""].join("\n"));
    pool = createLinkPool({ env: { ...env, SYNAPSE_SSH_DIR: dir }, log: createLogger("links-test", "error") });
    const err = await pool.get({ ...row, name: "mac-host", sshHost: "mac-host", sshIdentityFile: null }).then(
      () => null,
      (e: unknown) => e as { message: string; issues?: { path: string; message: string }[] },
    );
    expect(err?.message).toContain(`no host key for mac-host is in ${path.join(dir, "known_hosts")}, so the app does not connect to it: add the host's key there`);
    expect(err?.message).toContain('"StrictHostKeyChecking accept-new" under "Host mac-host"');
    expect(err?.message).not.toContain("trustOnFirstUse");
    expect(err?.issues?.map((i) => i.path)).toEqual(["hostKeyFingerprint"]);
    rmSync(dir, { recursive: true, force: true });
  });
});
