import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { LinkConfigError, parseSshLinkConfig } from "./ssh-config.ts";
import { createSshLink } from "./ssh.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "synapse-linkcfg-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function keygen(type: "ed25519" | "rsa"): string {
  const file = path.join(dir, `key-${type}`);
  execFileSync("/usr/bin/ssh-keygen", ["-q", "-t", type, ...(type === "rsa" ? ["-b", "2048"] : []), "-N", "", "-f", file]);
  return readFileSync(file, "utf8");
}
const ed25519 = keygen("ed25519");
const rsa = keygen("rsa");
const PIN = `SHA256:${"A".repeat(43)}`;
const valid = { name: "mac", host: "host.docker.internal", username: "me", privateKey: ed25519, hostKeyFingerprints: [PIN] };

function issuesOf(input: unknown): string[] {
  try {
    parseSshLinkConfig(input);
  } catch (err) {
    expect(err).toBeInstanceOf(LinkConfigError);
    return [...new Set((err as LinkConfigError).issues.map((i) => i.path))];
  }
  return [];
}

describe("ssh link config", () => {
  it("accepts a complete config and fills defaults", () => {
    const c = parseSshLinkConfig(valid);
    expect(c).toMatchObject({ port: 22, command: "agent", trustOnFirstUse: false, callTimeoutMs: 30_000, keepaliveIntervalMs: 5000 });
  });

  it("names each bad field", () => {
    expect(issuesOf({ ...valid, port: 70000 })).toEqual(["port"]);
    expect(issuesOf({ ...valid, host: "evil host; rm" })).toEqual(["host"]);
    expect(issuesOf({ ...valid, username: "" })).toEqual(["username"]);
    expect(issuesOf({ ...valid, hostKeyFingerprints: ["MD5:aa"] })).toEqual(["hostKeyFingerprints.0"]);
    expect(issuesOf({ ...valid, reconnect: { initialDelayMs: 5000, maxDelayMs: 100 } })).toEqual(["reconnect.maxDelayMs"]);
    expect(issuesOf({ ...valid, surprise: 1 })).toEqual([""]);
  });

  it("refuses an unpinned host unless trust on first use is explicit", () => {
    expect(issuesOf({ ...valid, hostKeyFingerprints: [] })).toEqual(["hostKeyFingerprints"]);
    expect(() => parseSshLinkConfig({ ...valid, hostKeyFingerprints: [], trustOnFirstUse: true })).not.toThrow();
    expect(() => createSshLink({ ...valid, hostKeyFingerprints: [] })).toThrow(/hostKeyFingerprints: no host key is pinned/);
  });

  it("wants an ed25519 private key", () => {
    expect(issuesOf({ ...valid, privateKey: rsa })).toEqual(["privateKey"]);
    expect(issuesOf({ ...valid, privateKey: "not a key" })).toEqual(["privateKey"]);
    const pub = readFileSync(path.join(dir, "key-ed25519.pub"), "utf8");
    expect(issuesOf({ ...valid, privateKey: pub })).toEqual(["privateKey"]);
  });

  it("only runs the forced command's `agent` verb", () => {
    expect(issuesOf({ ...valid, command: "agent; id" })).toEqual(["command"]);
  });
});
