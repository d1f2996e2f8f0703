/**
 * Reads one llama-server's figures, on the connections the gateway uses to
 * reach it (gateway/upstream.ts `read`, with the server's own key):
 *
 *   GET /props    `is_sleeping`: /props and /metrics do not wake a server
 *                 llama-server put to sleep (--sleep-idle-seconds); /slots does
 *   GET /metrics  its counters and gauges (needs --metrics, which the agent gives)
 *   GET /slots    busy slots, and the tokens their requests generated so
 *                 far (`next_token[0].n_decoded`), only while it is awake
 */
import type { ForwardTarget, Upstream } from "~/server/gateway/upstream";
import { llamaFigures, type LlamaFigures } from "./llama-text";

export interface ServerReading {
  /** Epoch ms of the read. */
  at: number;
  /**
   * llama-server's Process-Start-Time-Unix header, as an identity of its process only: a new value is a
   * restart (which a counter going back may not show). Not a time: despite its name, the builds here send
   * `ggml_time_us()` at the server's start (tools/server/server-context.cpp, metrics.t_start), microseconds
   * on a monotonic clock since boot (62997431487 at 17.5 h of uptime), not Unix seconds.
   */
  processStart: number | null;
  figures: LlamaFigures;
  sleeping: boolean;
  /**
   * Parallel slots and how many are working; null while sleeping (not read, so as not to wake it). `generating`:
   * tokens generated so far by the requests the working slots are answering (the sum of their
   * `next_token[0].n_decoded`). llama-server adds a request's tokens to `tokens_predicted_total` only when the
   * request ends, so a long generation shows there only at its end (rates.ts adds these).
   */
  slots: { total: number; busy: number; generating: number } | null;
}

/** Why a read failed, in words for the log and the dashboard. */
export class ServerReadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ServerReadError";
  }
}

const SMALL = 256 * 1024;
/** /props carries the chat template and the default generation settings: tens of KB. */
const PROPS = 2 * 1024 * 1024;

/** Reads a server's figures; rejects with ServerReadError saying what to do. */
/** `signal`: abandons the read at once (the server is being stopped: an answer it still owes would hold its exit). */
export async function readServer(upstream: Upstream, target: ForwardTarget, options: { timeoutMs: number; now?: () => number; signal?: AbortSignal }): Promise<ServerReading> {
  const now = options.now ?? Date.now;
  const where = `${target.host}:${target.port}`;
  const get = async (path: string, maxBytes: number) => {
    try {
      return await upstream.read(target, path, { timeoutMs: options.timeoutMs, maxBytes, ...(options.signal ? { signal: options.signal } : {}) });
    } catch (cause) {
      throw new ServerReadError(`${where}${path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    }
  };

  const props = await get("/props", PROPS);
  if (props.status === 401) throw new ServerReadError(`${where} refused the server key (401); restart the model so it runs with its registry key`);
  let sleeping = false;
  if (props.status === 200) {
    try {
      sleeping = (JSON.parse(props.body) as { is_sleeping?: unknown }).is_sleeping === true;
    } catch {
      // Not JSON: treat as awake; /metrics below says whether it is a llama-server.
    }
  }
  const metrics = await get("/metrics", SMALL);
  if (metrics.status === 501) throw new ServerReadError(`${where} has no /metrics: it was started without --metrics (update the agent on its host, which adds it, or add --metrics to the model's extra flags) and restart it`);
  if (metrics.status !== 200) throw new ServerReadError(`${where}/metrics answered ${metrics.status}`);
  const figures = llamaFigures(metrics.body);
  if (!figures) throw new ServerReadError(`${where}/metrics has no llama.cpp counters (llamacpp:prompt_tokens_total); is it a llama-server?`);
  const startHeader = Number(metrics.headers["process-start-time-unix"]);

  let slots: ServerReading["slots"] = null;
  if (!sleeping) {
    const s = await get("/slots", SMALL);
    if (s.status === 200) {
      try {
        const list = JSON.parse(s.body) as { is_processing?: unknown; next_token?: { n_decoded?: unknown }[] }[];
        if (Array.isArray(list)) {
          const working = list.filter((x) => x.is_processing === true);
          let generating = 0;
          for (const x of working) {
            const n = Array.isArray(x.next_token) ? x.next_token[0]?.n_decoded : undefined;
            if (typeof n === "number" && Number.isFinite(n) && n > 0) generating += n;
          }
          slots = { total: list.length, busy: working.length, generating };
        }
      } catch {
        // Leave slots unknown.
      }
    }
  }
  return { at: now(), processStart: Number.isFinite(startHeader) && startHeader > 0 ? startHeader : null, figures, sleeping, slots };
}
