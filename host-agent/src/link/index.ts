/** `synapse-host-agent/link`: how the control plane reaches a host's agent. */
export type { HostLink, LinkKind, LinkLog, LinkLogLevel, LinkState, LinkStateChange } from "./types.ts";
export { EARLY_RETRY_MIN_GAP_MS, leftConnecting, stderrLinkLog, silentLinkLog } from "./types.ts";
export { createLocalLink, type LocalLinkOptions } from "./local.ts";
export { DEFAULT_MAX_TUNNEL_CHANNELS, DEFAULT_TUNNEL_OPEN_TIMEOUT_MS, TUNNEL_HOST, hasTcpTunnel, type TcpTunnel, type TcpTunnelOptions } from "./ssh-tunnel.ts";
export { createSshLink, type SshLinkOptions, type TrustedHostKey } from "./ssh.ts";
export { LinkConfigError, parseSshLinkConfig, sshLinkConfigSchema, type SshLinkConfig, type SshLinkConfigInput } from "./ssh-config.ts";
export { FINGERPRINT_PATTERN, fingerprintOf, keyTypeOf, knownHostKeys, knownHostsLine, knownHostsName, type KnownHostKey } from "./host-key.ts";
export {
  DEFAULT_HOST_ALIAS,
  createSshLinkFromOpenSshDir,
  parseOpenSshConfig,
  readOpenSshDir,
  recordKnownHost,
  type OpenSshDirOptions,
  type OpenSshDirResult,
  type OpenSshHostEntry,
} from "./openssh-dir.ts";
export { DEFAULT_CALL_TIMEOUT_MS, MAX_REQUEST_LINE_BYTES } from "./wire.ts";
