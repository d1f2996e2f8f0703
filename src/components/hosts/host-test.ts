/**
 * What "Test connection" found, as label/value pairs for the host card:
 * the agent's version, platform, llama-server (or that it is missing), and
 * the host key fingerprint the SSH server presented.
 */
import type { RouterOutputs } from "~/components/api/types";

type TestResult = RouterOutputs["hosts"]["test"];

export interface HostTestView {
  ok: boolean;
  error: string | null;
  facts: [string, string][];
  fingerprint: string | null;
  /** The presented key was checked against a pin (else: first sight, nothing pinned). */
  pinned: boolean;
  llamaMissing: boolean;
  llamaDetail: string | null;
  /** The host's `process.platform` ("linux", "darwin"), for how to install llama-server there. */
  platform?: string;
}

export function describeTest(t: TestResult): HostTestView {
  const h = t.hello;
  const ls = h.llamaServer;
  // A configured path that does not run (missing file, not executable) is as good as none.
  const unusable = ls.path !== null && ls.error !== null && ls.version === null;
  const facts: [string, string][] = [
    ["Agent", `${h.agentVersion} (protocol ${h.protocolVersion})`],
    ["Host name", h.hostname],
    ["Platform", `${h.platform} / ${h.arch}`],
    ["llama-server", ls.path ? `${ls.path}${ls.version ? ` (version ${ls.version}${ls.commit ? `, ${ls.commit}` : ""})` : ""}${unusable ? " — not usable" : ""}` : "not found"],
  ];
  if (h.modelRoots.length) facts.push(["Model folders", h.modelRoots.join(", ")]);
  return { ok: true, error: null, facts, fingerprint: t.hostKeyFingerprint, pinned: t.hostKeyPinned, llamaMissing: !ls.path || unusable, llamaDetail: ls.error, platform: h.platform };
}
