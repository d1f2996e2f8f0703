/**
 * Pieces both link kinds share so they behave the same: result parsing
 * against the protocol, per-call deadlines, error normalisation.
 */
import { AgentError, methods, type Method, type Result, type WireError } from "../protocol.ts";
import { errorMessage, formatIssues } from "../shared/error-text.ts";

export const DEFAULT_CALL_TIMEOUT_MS = 30_000;
/** Upper bound for a request line; the agent's reader drops longer lines. */
export const MAX_REQUEST_LINE_BYTES = 1024 * 1024;

/** Parses a result with the method's schema (which also fills defaults), as the wire would deliver it. */
export function parseResult<M extends Method>(host: string, method: M, raw: unknown): Result<M> {
  const r = methods[method].result.safeParse(raw);
  if (!r.success) {
    const detail = formatIssues(r.error.issues.slice(0, 5).map((i) => ({ path: i.path.join("."), message: i.message })), "(result)");
    throw new AgentError({ code: "INTERNAL", message: `host '${host}' sent a malformed result for ${method}: ${detail}` }, { cause: r.error });
  }
  return r.data as Result<M>;
}

/** Rebuilds an error the way it would arrive over the wire: AgentErrors intact, anything else INTERNAL. */
export function errorFromWire(wire: WireError, cause?: unknown): AgentError {
  return new AgentError(wire, cause === undefined ? undefined : { cause });
}

export function toWireError(err: unknown): WireError {
  if (err instanceof AgentError) return err.toWire();
  return { code: "INTERNAL", message: errorMessage(err) };
}

export function timeoutError(host: string, method: Method, timeoutMs: number): AgentError {
  return new AgentError({ code: "TIMEOUT", message: `host '${host}' did not answer ${method} within ${timeoutMs} ms` });
}

export function abortedError(host: string, method: Method, reason: unknown): AgentError {
  if (reason instanceof AgentError) return reason;
  return new AgentError({ code: "TIMEOUT", message: `${method} on host '${host}' was cancelled by the caller` }, { cause: reason });
}

export function closedError(host: string): AgentError {
  return new AgentError({ code: "UNAVAILABLE", message: `the link to host '${host}' is closed` });
}

/**
 * Runs `body` with a deadline and an optional abort signal. `onSettledEarly`
 * lets the caller forget a pending request when the deadline or abort wins.
 */
export function withDeadline<T>(
  body: Promise<T>,
  options: { host: string; method: Method; timeoutMs: number; signal?: AbortSignal; onGiveUp?: () => void },
): Promise<T> {
  const { host, method, timeoutMs, signal, onGiveUp } = options;
  if (signal?.aborted) {
    onGiveUp?.();
    body.catch(() => {});
    return Promise.reject(abortedError(host, method, signal.reason));
  }
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const finish = (fn: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      fn();
    };
    const timer = setTimeout(() => {
      finish(() => {
        onGiveUp?.();
        reject(timeoutError(host, method, timeoutMs));
      });
    }, timeoutMs);
    const onAbort = () =>
      finish(() => {
        onGiveUp?.();
        reject(abortedError(host, method, signal?.reason));
      });
    signal?.addEventListener("abort", onAbort, { once: true });
    body.then(
      (v) => finish(() => resolve(v)),
      (e) => finish(() => reject(e)),
    );
  });
}

/**
 * Splits a byte stream into lines with a length bound; an oversize line is
 * skipped up to its newline and reported, never buffered without limit.
 */
export class LineSplitter {
  private pieces: Buffer[] = [];
  private bytes = 0;
  private discarding = false;
  constructor(
    private readonly maxLineBytes: number,
    private readonly onLine: (line: string) => void,
    private readonly onOversize: () => void,
  ) {}

  push(chunk: Buffer | string): void {
    let buf = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    while (buf.length > 0) {
      const nl = buf.indexOf(0x0a);
      const part = nl === -1 ? buf : buf.subarray(0, nl);
      if (!this.discarding) {
        if (this.bytes + part.length > this.maxLineBytes) {
          this.discarding = true;
          this.pieces = [];
          this.bytes = 0;
          this.onOversize();
        } else {
          this.pieces.push(part);
          this.bytes += part.length;
        }
      }
      if (nl === -1) return;
      if (!this.discarding) {
        const line = Buffer.concat(this.pieces, this.bytes).toString("utf8");
        this.pieces = [];
        this.bytes = 0;
        this.onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
      }
      this.discarding = false;
      buf = buf.subarray(nl + 1);
    }
  }

  reset(): void {
    this.pieces = [];
    this.bytes = 0;
    this.discarding = false;
  }
}
