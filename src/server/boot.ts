/**
 * Process start-up and shutdown for the app server (called from
 * instrumentation.ts). A bad configuration ends the process with a message
 * naming each variable, before anything listens.
 *
 * Shutdown (the seed's "On Shutdown"): on SIGTERM / SIGINT every managed
 * server is stopped through its host's agent, then the process exits. Next's
 * own handlers would exit at once, so scripts/start.mjs sets
 * NEXT_MANUAL_SIG_HANDLE and this module owns the signals, from before the
 * runtime starts. One Ctrl-C under npm arrives twice and is one signal; a second signal more than 3 s
 * into the stop ends its wait for the gateway's requests in flight if it is still waiting (the stop goes on),
 * else exits at once (shutdown-signals.ts).
 */
import { env, EnvError } from "./env";
import { createLogger, errorFields } from "./log/logger";
import { judgeSignal, type FirstSignal } from "./shutdown-signals";
import { APP_VERSION } from "./version";

const log = createLogger("app");
const globalForBoot = globalThis as unknown as { synapseBoot?: Promise<void> };

/** Hard cap on shutdown, so a wedged link never keeps the process alive. */
const SHUTDOWN_DEADLINE_MS = 60_000;

export function boot(): Promise<void> {
  globalForBoot.synapseBoot ??= doBoot();
  return globalForBoot.synapseBoot;
}

async function doBoot(): Promise<void> {
  let config;
  try {
    config = env();
  } catch (err) {
    if (err instanceof EnvError) {
      process.stderr.write(`synapse: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const { getRuntime } = await import("./runtime");
  const starting = getRuntime();
  // Signals are owned from the first moment: a SIGTERM during start-up (migrations, adoption,
  // a reconcile that already starts servers) waits for the runtime and then stops what it runs.
  let started: Awaited<typeof starting> | null = null;
  void starting.then((r) => (started = r), () => undefined);
  installSignalHandlers(
    async () => {
      const runtime = await starting.catch(() => null);
      await runtime?.close({ stopServers: !config.SYNAPSE_LEAVE_SERVERS_RUNNING });
    },
    () => started?.endShutdownWait() ?? false,
  );
  try {
    // Opens and migrates the database, connects the hosts' links and re-adopts running servers.
    await starting;
  } catch (err) {
    log.error("start-up failed", { database: config.DATABASE_URL, ...errorFields(err) });
    process.exit(1);
  }
  log.info("ready", { version: APP_VERSION, hostname: config.HOSTNAME, port: config.PORT, leaveServersRunning: config.SYNAPSE_LEAVE_SERVERS_RUNNING });
}

/**
 * `close`: the orderly stop the first signal begins. `endWait`: a later signal, during the stop's wait for the
 * gateway's requests in flight, ends that wait (true when one was under way) and the stop goes on; a signal
 * after that exits at once.
 */
function installSignalHandlers(close: () => Promise<void>, endWait: () => boolean): void {
  if (!process.env.NEXT_MANUAL_SIG_HANDLE) {
    // Started without scripts/start.mjs (e.g. plain `next start`): take the signals over from Next,
    // whose handlers would exit before the servers are stopped.
    process.removeAllListeners("SIGTERM");
    process.removeAllListeners("SIGINT");
  }
  let first: FirstSignal | null = null;
  /** The signal before this one (one Ctrl-C under npm comes twice, a second press too). */
  let last: FirstSignal | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    const nowMs = Date.now();
    const before = last;
    last = { signal, atMs: nowMs };
    switch (judgeSignal(first, signal, nowMs, undefined, before)) {
      case "same":
        // Ctrl-C under npm: the terminal's SIGINT and npm's forwarded copy, milliseconds apart.
        log.debug("the same signal again (the terminal's and npm's copy of one Ctrl-C)", { signal, sinceMs: nowMs - first!.atMs });
        return;
      case "ignored":
        log.info("repeated signal ignored; still shutting down (the same signal 3 s or more after the first ends the wait for requests in flight)", { signal, sinceMs: nowMs - first!.atMs });
        return;
      case "exit":
        // While the stop waits for requests in flight, a second signal ends that wait, not the stop.
        if (endWait()) {
          log.warn("second signal: no longer waiting for the gateway's requests in flight; the stop goes on (another signal exits at once, without stopping the remaining servers)", { signal });
          return;
        }
        log.warn("second signal while stopping; exiting now without stopping the remaining servers", { signal });
        process.exit(130);
        return;
      case "stop":
        break;
    }
    first = { signal, atMs: nowMs };
    log.info("shutting down", { signal });
    const deadline = setTimeout(() => {
      log.error("shutdown deadline passed; exiting", { deadlineMs: SHUTDOWN_DEADLINE_MS });
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    close().then(
      () => {
        log.info("stopped");
        process.exit(0);
      },
      (err: unknown) => {
        log.error("shutdown failed", errorFields(err));
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
