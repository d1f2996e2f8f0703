/**
 * A host's model port range: the ports its key may open channels to
 * (scripts/setup-ssh.sh --model-ports A-B writes one permitopen per port).
 * Stored on the Host row as the text the user gave, `A-B` or `P`; models
 * on an ssh host reached through the tunnel must use a port inside it.
 */
import { z } from "zod";

/** At most this many ports: each is one permitopen in the key's authorized_keys line. */
export const MAX_MODEL_PORTS = 256;

export interface PortRange {
  from: number;
  to: number;
}

const RANGE = /^(\d{1,5})(?:-(\d{1,5}))?$/;

/** `8080-8099` or `8080` → {from, to}; null for text that is not a range (see modelPortsSchema for the messages). */
export function parseModelPorts(text: string): PortRange | null {
  const m = RANGE.exec(text.trim());
  if (!m) return null;
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (from < 1 || to > 65535 || from > to || to - from + 1 > MAX_MODEL_PORTS) return null;
  return { from, to };
}

export function formatPortRange(r: PortRange): string {
  return r.from === r.to ? String(r.from) : `${r.from}-${r.to}`;
}

export function inRange(r: PortRange, port: number): boolean {
  return port >= r.from && port <= r.to;
}

/** The host field: a port or a range of at most MAX_MODEL_PORTS ports, normalised to `A-B`/`P`. */
export const modelPortsSchema = z
  .string({ error: "must be a port range such as 8080-8099" })
  .trim()
  .superRefine((text, ctx) => {
    const m = RANGE.exec(text);
    if (!m) return void ctx.addIssue({ code: "custom", message: `must be a port range such as 8080-8099 (got ${JSON.stringify(text)})` });
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (from < 1 || to > 65535) return void ctx.addIssue({ code: "custom", message: "ports must be between 1 and 65535" });
    if (from > to) return void ctx.addIssue({ code: "custom", message: `the range starts above its end (${from} > ${to}); write it low-high` });
    if (to - from + 1 > MAX_MODEL_PORTS) ctx.addIssue({ code: "custom", message: `${to - from + 1} ports is more than ${MAX_MODEL_PORTS} (each is one permitopen in the key's line); choose a smaller range` });
  })
  .transform((text) => formatPortRange(parseModelPorts(text)!));

/** Whether models on this host must use a port inside its range: an ssh host reached through the tunnel, with a range set. */
export function tunnelRange(host: { linkKind: string; upstreamMode: string; modelPorts: string | null }): PortRange | null {
  if (host.linkKind !== "ssh" || host.upstreamMode === "direct" || !host.modelPorts) return null;
  return parseModelPorts(host.modelPorts);
}

/** The message for a model port outside its host's range, naming what to change. */
export function outsideRangeMessage(hostName: string, port: number, range: PortRange): string {
  return (
    `${port} is outside host ${hostName}'s model ports ${formatPortRange(range)}: its key may open channels only to those; ` +
    `choose a port in ${formatPortRange(range)}, or widen the range (on the host: scripts/setup-ssh.sh --model-ports ${formatPortRange({ from: Math.min(range.from, port), to: Math.max(range.to, port) })}, then the same range on the host here)`
  );
}
