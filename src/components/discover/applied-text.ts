/**
 * The Discover banner after "Enable N selected" or "Remove selected": what the last action did, so the
 * banner never contradicts the rows (the scan's "Added 1 new model (disabled)." beside a row now enabled).
 */

/**
 * `done`: the names of the models enabled (or removed), in the order asked; `failed`: "name: reason" of
 * each one refused. E.g. "Enabled 2 models: alpha, bravo.", "Removed 1 model from the registry: alpha.",
 * "Enabled 1 model: alpha. Not enabled (1): bravo: host mac is unreachable.", "Nothing enabled. Not
 * enabled (1): …".
 */
export function appliedText(action: "enable" | "remove", done: readonly string[], failed: readonly string[]): string {
  const n = done.length;
  const models = `${n} model${n === 1 ? "" : "s"}`;
  const did = n === 0 ? `Nothing ${action === "enable" ? "enabled" : "removed"}.` : action === "enable" ? `Enabled ${models}: ${done.join(", ")}.` : `Removed ${models} from the registry: ${done.join(", ")}.`;
  if (failed.length === 0) return did;
  return `${did} Not ${action === "enable" ? "enabled" : "removed"} (${failed.length}): ${failed.join("; ")}.`;
}
