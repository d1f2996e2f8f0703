/**
 * What the app says when it cannot take its public address (HOSTNAME:PORT):
 * the gateway's worker thread reports the listen error's code (worker.ts,
 * `listen-failed`) and this turns it into one line that says what to do.
 * For a port in use it names the holder (host-agent's port lookup: /proc on
 * Linux, lsof on macOS) and a free port near it that no model on this
 * machine is registered on (registered-ports.ts).
 *
 *   port 3000 is in use (by pid 4242, next-server (v16.4.6)); stop that process or set PORT to a free port (e.g. PORT=3001, free now)
 */
import { readFile } from "node:fs/promises";
import net from "node:net";
import { canBind, findPortListener } from "synapse-host-agent/port";

export interface ListenAddress {
  host: string;
  port: number;
}

/** The app cannot listen on its public address; `message` says why and what to do. */
export class ListenError extends Error {
  constructor(
    readonly listen: ListenAddress,
    /** The listen error's code (EADDRINUSE, EACCES, EADDRNOTAVAIL, …), null when it had none. */
    readonly code: string | null,
    message: string,
  ) {
    super(message);
    this.name = "ListenError";
  }
}

/** How many ports above the taken one are tried for a free one to suggest. */
const FREE_PORT_SEARCH = 20;
/** A holder's command line is cut to this many characters. */
const COMMAND_MAX_CHARS = 80;

/** The holder's command line on Linux (Next's process title, `python3 -m http.server 3000`), else its command name. */
async function commandLine(pid: number, fallback: string | null): Promise<string | null> {
  if (process.platform !== "linux") return fallback;
  try {
    const line = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").filter(Boolean).join(" ").trim();
    if (line === "") return fallback;
    return line.length > COMMAND_MAX_CHARS ? `${line.slice(0, COMMAND_MAX_CHARS - 1)}…` : line;
  } catch {
    return fallback;
  }
}

/**
 * The first port above `port` (at most FREE_PORT_SEARCH above) that `host` can listen on now and that is not
 * `registered` (port → model name: a model's server starts there), or null; `skipped`: the registered ones
 * passed over on the way, lowest first.
 */
async function freePortNear(host: string, port: number, registered: ReadonlyMap<number, string>): Promise<{ free: number | null; skipped: { port: number; model: string }[] }> {
  const skipped: { port: number; model: string }[] = [];
  for (let p = port + 1; p <= Math.min(65535, port + FREE_PORT_SEARCH); p++) {
    const model = registered.get(p);
    if (model !== undefined) skipped.push({ port: p, model });
    else if (await canBind(p, host)) return { free: p, skipped };
  }
  return { free: null, skipped };
}

/** What a listen failure may look up. */
export interface ListenFailureOptions {
  /**
   * port → model name of the models on this machine's hosts (registered-ports.ts): never suggested, since the
   * model's server starts there. Asked only for a port in use. Default: none.
   */
  registeredPorts?: () => ReadonlyMap<number, string>;
}

/** "(by pid 4242, node)", or why the holder is not named. */
async function holderText(port: number): Promise<string> {
  const holder = await findPortListener(port).catch(() => null);
  if (!holder || holder.pid === null) return "(by a process this user cannot see)";
  const command = await commandLine(holder.pid, holder.command);
  return `(by pid ${holder.pid}${command ? `, ${command}` : ""})`;
}

/**
 * One line for a failed listen on `listen`: `code` and `message` are the
 * listen error's (Node's `err.code`, `err.message`). Never rejects.
 */
export async function listenFailureText(listen: ListenAddress, code: string | null, message: string, options: ListenFailureOptions = {}): Promise<string> {
  const { host, port } = listen;
  switch (code) {
    case "EADDRINUSE": {
      let registered: ReadonlyMap<number, string> = new Map();
      try {
        registered = options.registeredPorts?.() ?? registered;
      } catch {
        // Nothing known of the registry: every free port may be suggested.
      }
      const [by, near] = await Promise.all([holderText(port), freePortNear(host, port, registered).catch(() => ({ free: null, skipped: [] }))]);
      const skipped = near.skipped.length > 0 ? `; ${near.skipped.map((s) => `${s.port} is model ${s.model}'s`).join(", ")}` : "";
      return `port ${port} is in use ${by}; stop that process or set PORT to a free port${near.free === null ? "" : ` (e.g. PORT=${near.free}, free now${skipped})`}`;
    }
    case "EACCES":
      return `this user may not listen on port ${port} (ports below 1024 need privileges); set PORT to 1024 or above`;
    case "EADDRNOTAVAIL":
      return `HOSTNAME=${host} is not an address of this machine; set HOSTNAME to one of its addresses (127.0.0.1: this machine only)`;
    default:
      return `cannot listen on ${host}:${port}: ${message}`;
  }
}

/** How long the look at the address (listenProblem) may take: a HOSTNAME that is a name is looked up first (ms). */
const LISTEN_PROBE_MS = 10_000;

/**
 * Whether `listen` can be taken now: listens there and closes again at once.
 * Resolves null when it could, else a ListenError whose message is
 * listenFailureText's line (the same line the worker's failed listen gives).
 * scripts/start.mjs asks this before it builds the app (minutes): a port in
 * use ends the start before a build rewrites .next/ under the app that holds
 * it. The worker's own listen (installGateway) still decides, since another
 * process can take the port in between. Never rejects; at LISTEN_PROBE_MS it
 * resolves a ListenError with code null.
 */
export function listenProblem(listen: ListenAddress, options: ListenFailureOptions = {}): Promise<ListenError | null> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    const timer = setTimeout(() => {
      probe.close();
      resolve(new ListenError(listen, null, `cannot listen on ${listen.host}:${listen.port}: no answer within ${LISTEN_PROBE_MS / 1000} s (is HOSTNAME an address of this machine?)`));
    }, LISTEN_PROBE_MS);
    probe.once("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const code = err.code ?? null;
      void listenFailureText(listen, code, err.message, options).then((text) => resolve(new ListenError(listen, code, text)));
    });
    probe.listen(listen.port, listen.host, () => {
      clearTimeout(timer);
      probe.close(() => resolve(null));
    });
  });
}
