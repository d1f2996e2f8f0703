import { createHash, createHmac, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { fingerprintOf, keyTypeOf, knownHostKeys, knownHostsLine, knownHostsName } from "./host-key.ts";

// A real ed25519 public key line (from ssh-keygen) and its fingerprint as `ssh-keygen -lf` prints it.
const blob = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l2GKJl";
const fp = `SHA256:${createHash("sha256").update(Buffer.from(blob, "base64")).digest("base64").replace(/=+$/, "")}`;
const other = "AAAAC3NzaC1lZDI1NTE5AAAAIBq9mHLWvXgJZpM0bXyJoQ1c1mG2Qj9Q0lY0zW3bqZ7m";

describe("host keys", () => {
  it("fingerprints like OpenSSH and reads the key type", () => {
    expect(fingerprintOf(Buffer.from(blob, "base64"))).toBe(fp);
    expect(fp).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(keyTypeOf(Buffer.from(blob, "base64"))).toBe("ssh-ed25519");
    expect(keyTypeOf(Buffer.from([0, 0]))).toBeNull();
  });

  it("names hosts the known_hosts way", () => {
    expect(knownHostsName("mac", 22)).toBe("mac");
    expect(knownHostsName("127.0.0.1", 2222)).toBe("[127.0.0.1]:2222");
    expect(knownHostsLine("127.0.0.1", 2222, Buffer.from(blob, "base64"))).toBe(`[127.0.0.1]:2222 ssh-ed25519 ${blob}`);
  });

  it("finds plain, listed, wildcard, hashed and port-qualified entries", () => {
    const salt = randomBytes(20);
    const hashed = `|1|${salt.toString("base64")}|${createHmac("sha1", salt).update("[h.example]:2200").digest("base64")}`;
    const text = [
      "# comment",
      `host.docker.internal,mac-host ssh-ed25519 ${blob} me@mac`,
      `*.lan ssh-ed25519 ${other}`,
      `${hashed} ssh-ed25519 ${other}`,
      `[127.0.0.1]:2222 ssh-ed25519 ${blob}`,
      "garbage",
    ].join("\n");
    expect(knownHostKeys(text, "host.docker.internal", 22).keys.map((k) => k.fingerprint)).toEqual([fp]);
    expect(knownHostKeys(text, "x", 22, ["mac-host"]).keys).toHaveLength(1);
    expect(knownHostKeys(text, "studio.lan", 22).keys.map((k) => k.publicKey)).toEqual([other]);
    expect(knownHostKeys(text, "h.example", 2200).keys.map((k) => k.publicKey)).toEqual([other]);
    expect(knownHostKeys(text, "127.0.0.1", 2222).keys.map((k) => k.fingerprint)).toEqual([fp]);
    expect(knownHostKeys(text, "127.0.0.1", 22).keys).toEqual([]);
  });

  it("honours negation and @revoked", () => {
    const text = [`*,!bad.lan ssh-ed25519 ${blob}`, `@revoked * ssh-ed25519 ${other}`, `* ssh-ed25519 ${other}`].join("\n");
    expect(knownHostKeys(text, "bad.lan", 22).keys).toEqual([]);
    const r = knownHostKeys(text, "good.lan", 22);
    expect(r.keys.map((k) => k.publicKey)).toEqual([blob]);
    expect(r.revoked).toHaveLength(1);
  });
});
