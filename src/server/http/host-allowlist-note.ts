/**
 * What start-up says of the Host allowlist when the app is reachable beyond loopback (the token rule's
 * address: SYNAPSE_PUBLISH_ADDRESS, else HOSTNAME; env.ts). The guard (guard.ts) answers 403 to a request
 * whose Host header is not a loopback name, the listen address or in SYNAPSE_ALLOWED_HOSTS, so
 * `HOSTNAME=0.0.0.0` with a token alone starts fine and then refuses every request by the machine's LAN
 * address or name. A warning, not a refusal: loopback names keep working, and a reverse proxy in front may
 * send a Host the app accepts.
 *
 * Printed by the configuration check (gateway/config-check.ts) that scripts/start.mjs runs first.
 */
import os from "node:os";
import type { Env } from "../env";
import { isLoopback } from "../env";
import { acceptedHostNames } from "./guard";

/** Names other machines may reach this one by: its host name and its non-loopback IPv4 addresses. */
export interface MachineNames {
  hostname: string;
  addresses: string[];
}

/** This machine's (os.hostname(), os.networkInterfaces()'s external IPv4 addresses). */
export function machineNames(): MachineNames {
  const addresses = Object.values(os.networkInterfaces())
    .flatMap((list) => list ?? [])
    .filter((a) => a.family === "IPv4" && !a.internal)
    .map((a) => a.address);
  return { hostname: os.hostname().toLowerCase(), addresses };
}

export interface HostAllowlistNote {
  /** warn: SYNAPSE_ALLOWED_HOSTS is unset (a request by the LAN address or name gets 403); info: it is set. */
  level: "info" | "warn";
  message: string;
  /** The Host names accepted (acceptedHostNames), no port. */
  acceptedHosts: string[];
}

/** Used in the example when this machine's own names are not known (in a container they are the container's). */
const GENERIC_EXAMPLE = ["192.168.1.20", "my-mac.local"];
const WILDCARDS = new Set(["0.0.0.0", "::", "[::]"]);

/**
 * The note for an environment, or null when the app is reachable on loopback only. `machine`: this
 * machine's names, for the example (not used when SYNAPSE_PUBLISH_ADDRESS is set: the app then runs in a
 * container, whose names are not those clients use; the published address is, when it is not a wildcard).
 */
export function hostAllowlistNote(env: Pick<Env, "HOSTNAME" | "PORT" | "SYNAPSE_PUBLISH_ADDRESS" | "SYNAPSE_ALLOWED_HOSTS" | "SYNAPSE_API_TOKEN">, machine: MachineNames): HostAllowlistNote | null {
  const exposed = env.SYNAPSE_PUBLISH_ADDRESS ?? env.HOSTNAME;
  if (isLoopback(exposed)) return null;
  const where = env.SYNAPSE_PUBLISH_ADDRESS ? `SYNAPSE_PUBLISH_ADDRESS=${exposed}` : `HOSTNAME=${exposed}`;
  const acceptedHosts = acceptedHostNames({ allowedHosts: env.SYNAPSE_ALLOWED_HOSTS, listenHost: env.HOSTNAME, apiToken: env.SYNAPSE_API_TOKEN });
  const accepted = acceptedHosts.join(", ");
  if (env.SYNAPSE_ALLOWED_HOSTS.length > 0) {
    return { level: "info", acceptedHosts, message: `${where} is reachable beyond loopback; requests are answered when their Host is one of: ${accepted} (any other gets 403; SYNAPSE_ALLOWED_HOSTS adds names)` };
  }
  const own = env.SYNAPSE_PUBLISH_ADDRESS ? (WILDCARDS.has(exposed) ? [] : [exposed]) : [...machine.addresses.slice(0, 2), machine.hostname];
  const fresh = [...new Set(own.filter((n) => n && !acceptedHosts.includes(n.toLowerCase())))];
  const names = fresh.length > 0 ? fresh : GENERIC_EXAMPLE;
  const first = names[0]!;
  return {
    level: "warn",
    acceptedHosts,
    message:
      `${where} is reachable beyond loopback, but requests are answered only when their Host is one of: ${accepted} (SYNAPSE_ALLOWED_HOSTS is unset); ` +
      `a request by this machine's LAN address or name (such as http://${first.includes(":") ? `[${first}]` : first}:${env.PORT}) gets 403 until that name is in SYNAPSE_ALLOWED_HOSTS ` +
      `(comma separated, no port), e.g. SYNAPSE_ALLOWED_HOSTS=${names.join(",")}; a reverse proxy that sends one of the names above needs none`,
  };
}
