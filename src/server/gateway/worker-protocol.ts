/**
 * Messages between the gateway's worker thread (worker.ts: the public
 * listener, the fast path, the gateway) and the app's main thread
 * (fleet-host.ts: the fleet, the registry, the figures, Next). Both ends
 * ship in the same build, so the shapes need no versioning.
 *
 * worker → main
 *   call     a GatewayFleet / KeyStore method, answered by `reply`
 *   begin    a request is in flight on a model (the dashboard's count);
 *            `served`: and it was served at once (see `served`)
 *   served   that request got its place and was forwarded (its last use)
 *   end      that request ended
 *   idle     the idle unload time shown for a model (null: none)
 *   record   one request's figures (GatewayMetrics.record)
 *   queues   the queues' counts now (read when /api/metrics is)
 *   log      a line for the app's log
 *   listening / listen-failed   the public listener's outcome; `nodePort`
 *            is the worker's loopback listener for gateway requests that
 *            reached Next's server (front.ts passes them on to it)
 *   batch    several of the above, in order (the notes of up to
 *            NOTES_EVERY_MS: one message, one wake-up of the main thread)
 * main → worker
 *   reply    the answer to a call: a value, or an error (a GatewayError's
 *            fields kept, so the worker answers with it as the main thread
 *            would have)
 *   changed  a fleet event: models changed (state, registry); `keys`: a
 *            gateway key was created or deleted (the worker drops its
 *            cached keys)
 *   stopping a model's server is stopping (stopping.ts): the worker ends
 *            the requests it was answering on it
 *   shutdown the app begins to shut down (Fleet.onShutdown): the worker
 *            refuses new work and ends the requests that wait; a `flush`
 *            follows it (the shutdown's drain counts the requests the
 *            worker began before it once their begins are in)
 *   flush    send the notes held back now, then `flushed` (a read of
 *            /api/metrics sees every request that ended before it)
 *   next     where Next's server listens, once it does (the worker
 *            listens first: WorkerConfig.next is null then)
 */
import type { GatewayRequestRecord, ModelQueue } from "./metrics-port";
import type { GatewayError, GatewayErrorType } from "./openai-error";
import type { ShutdownNotice } from "~/server/services/fleet/fleet-types";
import type { ModelStopping } from "./stopping";

export type CallMethod = "models" | "start" | "stop" | "linkDown" | "hostReach" | "connectionConfig" | "keyLookup" | "guard";

export type WorkerMessage =
  | { t: "call"; id: number; method: CallMethod; args: unknown[] }
  | { t: "begin"; token: number; modelId: string; served?: true }
  | { t: "served"; token: number }
  | { t: "end"; token: number }
  | { t: "idle"; modelId: string; at: number | null }
  | { t: "record"; r: GatewayRequestRecord }
  | { t: "queues"; queues: ModelQueue[] }
  | { t: "log"; level: "warn" | "info"; msg: string; data?: Record<string, unknown> }
  | { t: "listening"; address: string; port: number; nodePort: number }
  | { t: "listen-failed"; code: string | null; message: string }
  | { t: "batch"; items: WorkerMessage[] }
  | { t: "flushed"; id: number };

export interface WireError {
  message: string;
  gateway?: { status: number; type: GatewayErrorType; code: string; options: GatewayError["options"] };
}

export type MainMessage =
  | { t: "reply"; id: number; ok: true; value: unknown }
  | { t: "reply"; id: number; ok: false; error: WireError }
  | { t: "changed"; keys?: boolean }
  | { t: "stopping"; stopping: ModelStopping }
  | { t: "shutdown"; notice: ShutdownNotice }
  | { t: "flush"; id: number }
  | { t: "next"; host: string; port: number };

/** What the main thread gives the worker when it starts it. */
export interface WorkerConfig {
  /** The public address clients use (the app's HOSTNAME and PORT). */
  listen: { host: string; port: number };
  /**
   * Where Next's own server listens (loopback, a port the OS chose): connections that are not the gateway's go there.
   * Null when the worker starts before Next's server listens (the app's start): the `next` message says it then.
   */
  next: { host: string; port: number } | null;
  /** Unix socket where the main thread opens channels to ssh hosts' model servers (fleet-host.ts). */
  channelSocket: string;
}
