/**
 * Reads the seed's `host-api/.ssh` folder and turns it into an ssh link
 * config, so people who followed the seed's manual steps (or ran
 * scripts/setup-ssh.sh) need nothing new:
 *
 *   config        OpenSSH client config with `Host mac-host` / HostName / User / Port / IdentityFile
 *   id_ed25519    the private key (IdentityFile; `~/.ssh/...` falls back to this folder)
 *   known_hosts   the host's public key, pinned by fingerprint
 *
 * Only what the link needs is read; unsupported directives (Match, Include,
 * ProxyJump) are reported, not silently half-applied.
 *
 * Host key policy: a key in known_hosts is pinned. With no entry, the link
 * refuses unless trust on first use is chosen, either by the caller or by
 * the config's own `StrictHostKeyChecking no|accept-new` (the seed's manual
 * config says `no`); then the first key seen is appended to known_hosts and
 * pinned from then on. A changed key is always refused, whatever the config says.
 */
import { appendFile, readFile, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { knownHostKeys } from "./host-key.ts";
import { LinkConfigError, type SshLinkConfigInput } from "./ssh-config.ts";
import { createSshLink, type SshLinkOptions, type TrustedHostKey } from "./ssh.ts";
import type { HostLink } from "./types.ts";
import { errorMessage } from "../shared/error-text.ts";

export const DEFAULT_HOST_ALIAS = "mac-host";

export interface OpenSshDirOptions {
  /** The `Host` entry to use (default "mac-host"). */
  alias?: string;
  /** Home folder for `~` in IdentityFile (default: this process's). */
  home?: string;
  /** Registry name of the host (default: the alias). */
  name?: string;
  /** Overrides the config's StrictHostKeyChecking when no key is pinned. */
  trustOnFirstUse?: boolean;
  /** Anything else for the link config (timeouts, backoff). */
  overrides?: Partial<Omit<SshLinkConfigInput, "host" | "port" | "username" | "privateKey" | "hostKeyFingerprints" | "trustOnFirstUse">>;
}

export interface OpenSshDirResult {
  config: SshLinkConfigInput;
  /** Where a trusted-on-first-use key is recorded. */
  knownHostsPath: string;
  identityFile: string;
  /** Directives present for the alias that the link does not apply. */
  ignored: string[];
}

export interface OpenSshHostEntry {
  hostName?: string;
  user?: string;
  port?: string;
  identityFile?: string;
  userKnownHostsFile?: string;
  strictHostKeyChecking?: string;
  ignored: string[];
}

const UNSUPPORTED = new Set(["match", "include", "proxyjump", "proxycommand", "hostkeyalias", "certificatefile"]);

function patternMatches(patterns: string[], alias: string): boolean {
  let matched = false;
  for (const p of patterns) {
    const negated = p.startsWith("!");
    const body = negated ? p.slice(1) : p;
    const re = new RegExp(`^${body.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`, "i");
    if (re.test(alias)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** OpenSSH semantics: settings before any Host apply to all; the first value found wins. */
export function parseOpenSshConfig(text: string, alias: string): OpenSshHostEntry {
  const entry: OpenSshHostEntry = { ignored: [] };
  let active = true;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([A-Za-z]+)\s*(?:=\s*|\s+)(.*)$/.exec(line);
    if (!m) continue;
    const keyword = m[1]!.toLowerCase();
    let value = m[2]!.trim();
    if (keyword === "host") {
      active = patternMatches(value.split(/\s+/), alias);
      continue;
    }
    if (keyword === "match") {
      // Match conditions are not evaluated: its block is skipped, and said so.
      active = false;
      entry.ignored.push(line);
      continue;
    }
    if (!active) continue;
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    const set = (k: Exclude<keyof OpenSshHostEntry, "ignored">) => {
      if (entry[k] === undefined) entry[k] = value;
    };
    switch (keyword) {
      case "hostname":
        set("hostName");
        break;
      case "user":
        set("user");
        break;
      case "port":
        set("port");
        break;
      case "identityfile":
        set("identityFile");
        break;
      case "userknownhostsfile":
        set("userKnownHostsFile");
        break;
      case "stricthostkeychecking":
        set("strictHostKeyChecking");
        break;
      default:
        if (UNSUPPORTED.has(keyword)) entry.ignored.push(line);
    }
  }
  return entry;
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** `~/.ssh/x` as written for the container; falls back to `x` inside the folder being read. */
async function resolveInDir(value: string, dir: string, home: string): Promise<string> {
  const expanded = value === "~" ? home : value.startsWith("~/") ? path.join(home, value.slice(2)) : path.isAbsolute(value) ? value : path.join(dir, value);
  if (await isFile(expanded)) return expanded;
  const local = path.join(dir, path.basename(expanded));
  if (await isFile(local)) return local;
  return expanded;
}

export async function readOpenSshDir(dir: string, options: OpenSshDirOptions = {}): Promise<OpenSshDirResult> {
  const alias = options.alias ?? DEFAULT_HOST_ALIAS;
  const home = options.home ?? os.homedir();
  const configPath = path.join(dir, "config");
  let text: string;
  try {
    text = await readFile(configPath, "utf8");
  } catch (err) {
    throw new LinkConfigError([{ path: "config", message: `cannot read ${configPath}: ${errorMessage(err)}` }], { cause: err });
  }
  const entry = parseOpenSshConfig(text, alias);
  const issues: { path: string; message: string }[] = [];
  if (!entry.hostName) issues.push({ path: "HostName", message: `no HostName for 'Host ${alias}' in ${configPath}` });
  if (!entry.user) issues.push({ path: "User", message: `no User for 'Host ${alias}' in ${configPath}` });
  const port = entry.port === undefined ? 22 : Number(entry.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) issues.push({ path: "Port", message: `Port ${entry.port} in ${configPath} is not a port number` });
  const identityFile = await resolveInDir(entry.identityFile ?? "id_ed25519", dir, home);
  let privateKey = "";
  try {
    privateKey = await readFile(identityFile, "utf8");
  } catch (err) {
    issues.push({ path: "IdentityFile", message: `cannot read the private key ${identityFile}: ${errorMessage(err)}` });
  }
  if (issues.length > 0) throw new LinkConfigError(issues);

  const knownHostsPath = entry.userKnownHostsFile ? await resolveInDir(entry.userKnownHostsFile.split(/\s+/)[0]!, dir, home) : path.join(dir, "known_hosts");
  const knownText = await readFile(knownHostsPath, "utf8").catch(() => "");
  const { keys } = knownHostKeys(knownText, entry.hostName!, port, [alias]);
  const strict = entry.strictHostKeyChecking?.toLowerCase();
  const configSaysTofu = strict === "no" || strict === "off" || strict === "accept-new";
  const config: SshLinkConfigInput = {
    ...options.overrides,
    name: options.name ?? alias,
    host: entry.hostName!,
    port,
    username: entry.user!,
    privateKey,
    hostKeyFingerprints: [...new Set(keys.map((k) => k.fingerprint))],
    trustOnFirstUse: keys.length === 0 && (options.trustOnFirstUse ?? configSaysTofu),
  };
  if (keys.length > 0) {
    // Offer only the pinned key types, so the server does not pick one we cannot check.
    const types = [...new Set(keys.map((k) => k.keyType))].filter((t): t is NonNullable<SshLinkConfigInput["hostKeyAlgorithms"]>[number] =>
      ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"].includes(t),
    );
    if (types.includes("ssh-rsa")) types.push("rsa-sha2-512", "rsa-sha2-256");
    if (types.length > 0) config.hostKeyAlgorithms = [...new Set(types)];
  }
  return { config, knownHostsPath, identityFile, ignored: entry.ignored };
}

/** Appends a trusted key to known_hosts (0600), so the next start pins it. */
export async function recordKnownHost(knownHostsPath: string, key: TrustedHostKey): Promise<void> {
  const existing = await readFile(knownHostsPath, "utf8").catch(() => "");
  const prefix = existing === "" || existing.endsWith("\n") ? "" : "\n";
  await appendFile(knownHostsPath, `${prefix}${key.knownHostsLine}\n`, { mode: 0o600 });
}

/** Reads the folder and opens a link; a key trusted on first use is written back to its known_hosts. */
export async function createSshLinkFromOpenSshDir(dir: string, options: OpenSshDirOptions & SshLinkOptions = {}): Promise<HostLink> {
  const { config, knownHostsPath, ignored } = await readOpenSshDir(dir, options);
  if (ignored.length > 0) options.log?.("warn", "ssh config directives not applied by the link", { dir, ignored });
  return createSshLink(config, {
    ...(options.log ? { log: options.log } : {}),
    ...(options.maxTunnelChannels !== undefined ? { maxTunnelChannels: options.maxTunnelChannels } : {}),
    onHostKeyTrusted: async (key) => {
      await recordKnownHost(knownHostsPath, key);
      await options.onHostKeyTrusted?.(key);
    },
  });
}
