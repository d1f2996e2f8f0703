/**
 * Host key pinning: OpenSSH-style SHA256 fingerprints and a known_hosts
 * reader, so a pin written by `ssh-keyscan`, `ssh-keygen -lf` or
 * scripts/setup-ssh.sh is understood as is.
 */
import { createHash, createHmac } from "node:crypto";

export const FINGERPRINT_PATTERN = /^SHA256:[A-Za-z0-9+/]{43}$/;

/** `SHA256:<base64 without padding>` of a key blob, the way `ssh-keygen -lf` prints it. */
export function fingerprintOf(keyBlob: Buffer): string {
  return `SHA256:${createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "")}`;
}

/** The key type named inside an SSH wire-format key blob (`ssh-ed25519`, ...). */
export function keyTypeOf(keyBlob: Buffer): string | null {
  if (keyBlob.length < 4) return null;
  const len = keyBlob.readUInt32BE(0);
  if (len <= 0 || len > 64 || 4 + len > keyBlob.length) return null;
  return keyBlob.subarray(4, 4 + len).toString("latin1");
}

export interface KnownHostKey {
  keyType: string;
  /** base64 key blob, as in the file */
  publicKey: string;
  fingerprint: string;
}

/** The name known_hosts uses for a host: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${escaped}$`, "i");
}

function hostFieldMatches(field: string, names: string[]): boolean {
  if (field.startsWith("|1|")) {
    // Hashed entry: |1|base64(salt)|base64(HMAC-SHA1(salt, name))
    const [, , salt, hash] = field.split("|");
    if (!salt || !hash) return false;
    const key = Buffer.from(salt, "base64");
    return names.some((n) => createHmac("sha1", key).update(n).digest("base64") === hash);
  }
  let matched = false;
  for (const pattern of field.split(",")) {
    const negated = pattern.startsWith("!");
    const re = globToRegExp(negated ? pattern.slice(1) : pattern);
    if (names.some((n) => re.test(n))) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/**
 * Keys in a known_hosts text for `host` (and `port`). Revoked keys are
 * returned separately so a caller can refuse them even if also listed.
 */
export function knownHostKeys(text: string, host: string, port: number, aliases: string[] = []): { keys: KnownHostKey[]; revoked: string[] } {
  const names = [...new Set([host, ...aliases].map((h) => knownHostsName(h, port)))];
  const keys: KnownHostKey[] = [];
  const revoked: string[] = [];
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#")) continue;
    let fields = line.split(/\s+/);
    let marker: string | null = null;
    if (fields[0]?.startsWith("@")) {
      marker = fields[0];
      fields = fields.slice(1);
    }
    const [hosts, keyType, blob] = fields;
    if (!hosts || !keyType || !blob) continue;
    if (!hostFieldMatches(hosts, names)) continue;
    let fingerprint: string;
    try {
      fingerprint = fingerprintOf(Buffer.from(blob, "base64"));
    } catch {
      continue;
    }
    if (marker === "@revoked") revoked.push(fingerprint);
    else if (marker === null) keys.push({ keyType, publicKey: blob, fingerprint });
    // @cert-authority entries need certificate support, which the link does not do.
  }
  return { keys: keys.filter((k) => !revoked.includes(k.fingerprint)), revoked };
}

/** A known_hosts line for a key the link just trusted. */
export function knownHostsLine(host: string, port: number, keyBlob: Buffer): string {
  return `${knownHostsName(host, port)} ${keyTypeOf(keyBlob) ?? "ssh-ed25519"} ${keyBlob.toString("base64")}`;
}
