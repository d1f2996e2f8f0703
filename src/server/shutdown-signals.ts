/**
 * What a SIGTERM / SIGINT means to an app that may already be stopping its servers (boot.ts owns the
 * signals). One Ctrl-C under `npm start` arrives twice: the terminal sends SIGINT to the whole
 * foreground process group (npm and node) and npm forwards its own to node, milliseconds later.
 *
 *   stop     the first signal: stop every server, then exit
 *   same     the same kind again within `sameMs` of the signal before it: one Ctrl-C delivered twice; nothing to say
 *   ignored  another signal within `graceMs` of the first: logged, the orderly stop goes on
 *   exit     a signal later than that: a deliberate second one; exit now without stopping the rest
 */
export type SignalVerdict = "stop" | "same" | "ignored" | "exit";

/** The first signal of this shutdown: its name and when it came (epoch ms). */
export interface FirstSignal {
  signal: NodeJS.Signals;
  atMs: number;
}

/** Windows in ms from the first signal (see SignalVerdict). */
export const SIGNAL_WINDOWS = { sameMs: 500, graceMs: 3_000 } as const;

/**
 * `last`: the signal before this one (default `first`): "same" is judged against it, so a later Ctrl-C under npm,
 * delivered twice too, is one press (a trial's second Ctrl-C: its copy 1 ms later was taken for a third and the app
 * exited leaving its servers running). The windows of "ignored" and "exit" count from the first.
 */
export function judgeSignal(first: FirstSignal | null, signal: NodeJS.Signals, nowMs: number, windows: { sameMs: number; graceMs: number } = SIGNAL_WINDOWS, last: FirstSignal | null = first): SignalVerdict {
  if (first === null) return "stop";
  if (last !== null && signal === last.signal && nowMs - last.atMs < windows.sameMs) return "same";
  return nowMs - first.atMs < windows.graceMs ? "ignored" : "exit";
}
