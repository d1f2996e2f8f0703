/**
 * `host-agent serve --stdio`: the agent's end of the ssh link. Requests arrive
 * as JSON lines on `input`, run concurrently through `api.call`, and their
 * replies go out as JSON lines on `output` (matched by id, in completion
 * order). Every agent event is forwarded as a line too.
 *
 * Robustness rules, because the other end is a network peer:
 * - a line is bounded (default 1 MiB); a longer one is dropped up to its
 *   newline and logged, never buffered without limit;
 * - a malformed line never throws: it gets a BAD_REQUEST reply when its id can
 *   be read, and is logged otherwise;
 * - the number of calls in flight is bounded; past it, reading pauses;
 * - when `output` is backpressured, reading pauses and `log` events (the only
 *   high-volume, droppable kind) are dropped past a budget and counted; replies
 *   and state events are never dropped.
 */
import type { AgentApi, AgentEvent, Method, Params, Reply, WireError } from "./protocol.ts";
import { AgentError, badRequestFromZod, requestSchema } from "./protocol.ts";
import { errorMessage } from "./shared/error-text.ts";

export type ServeLogLevel = "debug" | "info" | "warn" | "error";
export type ServeLog = (level: ServeLogLevel, msg: string, fields?: Record<string, unknown>) => void;

export interface ServeJsonLinesOptions {
  /** Longest accepted request line in bytes (without the newline). */
  maxLineBytes?: number;
  /** Calls running at once; reading pauses beyond this. */
  maxInFlight?: number;
  /** Bytes queued in `output` past which `log` events are dropped. */
  maxQueuedBytes?: number;
  /** After input ends, how long in-flight calls may still finish before they are aborted. */
  drainTimeoutMs?: number;
  /** Structured log sink; defaults to JSON lines on stderr (which the ssh link relays). */
  log?: ServeLog;
}

const DEFAULTS = {
  maxLineBytes: 1024 * 1024,
  maxInFlight: 256,
  maxQueuedBytes: 8 * 1024 * 1024,
  drainTimeoutMs: 10_000,
} as const;

const NEWLINE = 0x0a;

export const stderrLog: ServeLog = (level, msg, fields) => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, component: "serve-stdio", msg, ...fields })}\n`);
};

/** Resolves when `input` ends (or errors, or `output` closes) and in-flight calls have settled or been aborted. */
export async function serveJsonLines(
  api: AgentApi,
  input: NodeJS.ReadableStream,
  output: NodeJS.WritableStream,
  options: ServeJsonLinesOptions = {},
): Promise<void> {
  const maxLineBytes = options.maxLineBytes ?? DEFAULTS.maxLineBytes;
  const maxInFlight = options.maxInFlight ?? DEFAULTS.maxInFlight;
  const maxQueuedBytes = options.maxQueuedBytes ?? DEFAULTS.maxQueuedBytes;
  const drainTimeoutMs = options.drainTimeoutMs ?? DEFAULTS.drainTimeoutMs;
  const log = options.log ?? stderrLog;

  // Aborted when the session ends for good, so long calls (a start waiting
  // for readiness) do not outlive the peer that asked for them.
  const session = new AbortController();
  const inFlight = new Set<Promise<void>>();
  let outputBlocked = false;
  let outputGone = false;
  let inputDone = false;
  let droppedLogEvents = 0;

  // Pending bytes of the line being assembled; `discarding` while skipping an oversize line.
  let pieces: Buffer[] = [];
  let pieceBytes = 0;
  let discarding = false;

  const writable = output as NodeJS.WritableStream & { writableLength?: number; writableEnded?: boolean; destroyed?: boolean };

  const writeLine = (message: unknown): void => {
    if (outputGone) return;
    let text: string;
    try {
      text = JSON.stringify(message);
    } catch (err) {
      log("error", "could not serialise an outgoing message", { error: String(err) });
      return;
    }
    try {
      const flushed = output.write(`${text}\n`);
      if (!flushed && !outputBlocked) {
        outputBlocked = true;
        updateReading();
      }
    } catch (err) {
      // A write after the peer went away: the session is over.
      log("warn", "output write failed; ending session", { error: String(err) });
      markOutputGone();
    }
  };

  const onDrain = () => {
    outputBlocked = false;
    if (droppedLogEvents > 0) {
      log("warn", "dropped log events while output was backpressured", { dropped: droppedLogEvents });
      droppedLogEvents = 0;
    }
    updateReading();
  };

  const reply = (id: number, outcome: { ok: true; result: unknown } | { ok: false; error: WireError }): void => {
    const message: Reply = outcome.ok
      ? { type: "reply", id, ok: true, result: outcome.result }
      : { type: "reply", id, ok: false, error: outcome.error };
    writeLine(message);
  };

  const toWireError = (err: unknown): WireError => {
    if (err instanceof AgentError) return err.toWire();
    if (session.signal.aborted) return { code: "UNAVAILABLE", message: "the agent session ended before the call finished" };
    return { code: "INTERNAL", message: errorMessage(err) };
  };

  // One controller per call (not one shared signal), so hundreds of calls in
  // flight do not pile listeners onto a single AbortSignal.
  const callControllers = new Set<AbortController>();
  session.signal.addEventListener("abort", () => {
    for (const c of callControllers) c.abort(session.signal.reason);
  });

  const runRequest = (id: number, method: Method, params: unknown): void => {
    const controller = new AbortController();
    callControllers.add(controller);
    const task = (async () => {
      try {
        // Params are validated by the agent itself (parseParams), so they pass through as received.
        const result = await api.call(method, params as Params<typeof method>, { signal: controller.signal });
        reply(id, { ok: true, result });
      } catch (err) {
        reply(id, { ok: false, error: toWireError(err) });
      }
    })();
    inFlight.add(task);
    void task.finally(() => {
      callControllers.delete(controller);
      inFlight.delete(task);
      updateReading();
      maybeFinish();
    });
    updateReading();
  };

  const handleLine = (line: Buffer): void => {
    let text = line.toString("utf8");
    if (text.endsWith("\r")) text = text.slice(0, -1);
    if (text.trim() === "") return;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      log("warn", "ignored a line that is not JSON", { bytes: line.length, error: String(err) });
      return;
    }
    const parsed = requestSchema.safeParse(raw);
    if (!parsed.success) {
      const id = readId(raw);
      const error = badRequestFromZod(parsed.error, "request").toWire();
      if (id !== undefined) reply(id, { ok: false, error });
      else log("warn", "ignored a request without a usable id", { error: error.message });
      return;
    }
    runRequest(parsed.data.id, parsed.data.method, parsed.data.params);
  };

  const onData = (chunk: Buffer | string): void => {
    let buf = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    while (buf.length > 0) {
      const nl = buf.indexOf(NEWLINE);
      const part = nl === -1 ? buf : buf.subarray(0, nl);
      if (!discarding) {
        if (pieceBytes + part.length > maxLineBytes) {
          discarding = true;
          log("warn", "dropped a request line longer than the limit", { maxLineBytes });
          pieces = [];
          pieceBytes = 0;
        } else {
          pieces.push(part);
          pieceBytes += part.length;
        }
      }
      if (nl === -1) break;
      if (!discarding) {
        const line = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, pieceBytes);
        pieces = [];
        pieceBytes = 0;
        handleLine(line);
      }
      discarding = false;
      buf = buf.subarray(nl + 1);
    }
  };

  // Pause reading while too many calls run or the output is backed up, so a
  // fast peer cannot make the agent queue unbounded work or replies.
  let paused = false;
  function updateReading(): void {
    if (inputDone) return;
    const shouldPause = outputBlocked || inFlight.size >= maxInFlight;
    if (shouldPause && !paused) {
      paused = true;
      input.pause();
    } else if (!shouldPause && paused) {
      paused = false;
      input.resume();
    }
  }

  const unsubscribe = api.onEvent((event: AgentEvent) => {
    if (event.kind === "log" && (outputBlocked || (writable.writableLength ?? 0) > maxQueuedBytes)) {
      droppedLogEvents += 1;
      return;
    }
    writeLine(event);
  });

  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  let drainTimer: NodeJS.Timeout | undefined;

  function markOutputGone(): void {
    if (outputGone) return;
    outputGone = true;
    // Nobody can read replies any more: stop reading and abort what is running.
    endInput();
    session.abort(new AgentError({ code: "UNAVAILABLE", message: "the client went away" }));
    maybeFinish();
  }

  function endInput(): void {
    if (inputDone) return;
    inputDone = true;
    if (pieceBytes > 0 && !discarding) {
      // A last line without a trailing newline still counts.
      const line = Buffer.concat(pieces, pieceBytes);
      pieces = [];
      pieceBytes = 0;
      if (!outputGone) handleLine(line);
    }
    input.removeListener("data", onData);
    drainTimer = setTimeout(() => {
      if (inFlight.size > 0) {
        log("warn", "aborting calls still running after input ended", { inFlight: inFlight.size, drainTimeoutMs });
        session.abort(new AgentError({ code: "UNAVAILABLE", message: "the agent session ended" }));
      }
      // Do not wait on an api that ignores its abort signal: the session is over.
      finish();
    }, drainTimeoutMs);
    drainTimer.unref?.();
    maybeFinish();
  }

  function maybeFinish(): void {
    if (!inputDone || inFlight.size > 0) return;
    if (drainTimer) clearTimeout(drainTimer);
    finish();
  }

  const onInputEnd = () => endInput();
  const onInputError = (err: unknown) => {
    log("warn", "input stream failed; ending session", { error: String(err) });
    endInput();
  };
  const onOutputError = (err: unknown) => {
    log("warn", "output stream failed; ending session", { error: String(err) });
    markOutputGone();
  };
  const onOutputClose = () => markOutputGone();

  input.on("data", onData);
  input.on("end", onInputEnd);
  input.on("close", onInputEnd);
  input.on("error", onInputError);
  output.on("drain", onDrain);
  output.on("error", onOutputError);
  output.on("close", onOutputClose);
  input.resume();

  try {
    await finished;
    if (!outputGone && outputBlocked) {
      // Let the last replies flush, but not forever.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainTimeoutMs);
        timer.unref?.();
        output.once("drain", () => {
          clearTimeout(timer);
          resolve();
        });
        output.once("close", () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  } finally {
    unsubscribe();
    input.removeListener("data", onData);
    input.removeListener("end", onInputEnd);
    input.removeListener("close", onInputEnd);
    input.removeListener("error", onInputError);
    output.removeListener("drain", onDrain);
    output.removeListener("error", onOutputError);
    output.removeListener("close", onOutputClose);
    if (drainTimer) clearTimeout(drainTimer);
  }
}

function readId(raw: unknown): number | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const id = (raw as { id?: unknown }).id;
  return typeof id === "number" && Number.isInteger(id) && id >= 0 ? id : undefined;
}
