/**
 * A model's file path checked on save through the host's agent
 * (`checkModelPath`): a path the agent would refuse at start is a field error
 * on `filePath` and nothing is saved. When the host cannot be asked (its link
 * is down, or its agent predates the check) the model is saved with a note
 * saying the path is not checked yet; a start checks it again anyway.
 */
import type { ModelSummary } from "synapse-host-agent/protocol";
import type { LinkPool, PoolHost } from "~/server/services/fleet/links";
import { ServiceError } from "../errors";
import type { ModelShape } from "synapse-host-agent/model-shape";
import { linkWithFeature } from "./agent-with-feature";

export interface PathCheck {
  /** True when the host's agent checked the path and found nothing wrong. */
  checked: boolean;
  /** Why it was not checked, for the user to read; null when checked. */
  note: string | null;
  /** The model's shape, when the agent read it (agents with "model-shape"); memory estimates use it. */
  shape?: ModelShape;
  /** What discovery records of the file (architecture, parameter count, quantization, trained context, size), when the agent read it. */
  summary?: ModelSummary;
}

/**
 * Checks `hostPath` (the path as the host names it) on `host`. Resolves with
 * the outcome; rejects with BAD_REQUEST on `filePath` naming the problem when
 * the agent refuses the path.
 */
export type PathChecker = (host: PoolHost, hostPath: string) => Promise<PathCheck>;

const DEFAULT_TIMEOUT_MS = 5_000;

/** A PathChecker that asks through the app's host links; each call bounded by `timeoutMs` (default 5 s). */
export function agentPathChecker(links: Pick<LinkPool, "get">, options: { timeoutMs?: number } = {}): PathChecker {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return async (host, hostPath) => {
    const notChecked = (why: string): PathCheck => ({ checked: false, note: `path not checked yet: ${why}; it is checked again when the model starts` });
    let result;
    try {
      // Each call has its deadline; opening the link gets one too.
      const link = await linkWithFeature(links, host, "check-model-path", timeoutMs);
      if (!link) return notChecked(`the agent on ${host.name} cannot check paths; update the agent on ${host.name}`);
      result = await link.call("checkModelPath", { path: hostPath }, { timeoutMs });
    } catch (err) {
      return notChecked(`host ${host.name} could not be reached (${err instanceof Error ? err.message : String(err)})`);
    }
    if (result.problem !== null) throw ServiceError.invalid([{ path: "filePath", message: result.problem }]);
    return { checked: true, note: null, ...(result.shape ? { shape: result.shape } : {}), ...(result.summary ? { summary: result.summary } : {}) };
  };
}
