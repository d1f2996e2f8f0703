/**
 * What the app says of a disabled model, in one place so the two never disagree: the gateway's 409
 * (readiness.ts: "Disabled models are served by neither" policy, issue 15) and the answer to an explicit
 * start of one (servers.start / servers.restart, the CLI, the dashboard's toast). Such a start is allowed
 * (a way to try the model on its own port), but the gateway goes on refusing its requests until it is
 * enabled, and a start that said nothing of that read as if /v1 would now serve it.
 */

/** How a person enables a model: the dashboard's switch, the model's Edit form, or the API. */
export const ENABLE_ADVICE = "enable it with the Enabled switch on its row in the dashboard (or in its model page's Edit form, or tRPC models.setEnabled)";

/** The gateway's answer to a request for a disabled model (409 model_disabled). */
export function modelDisabledMessage(name: string): string {
  return `model ${JSON.stringify(name)} is disabled; ${ENABLE_ADVICE} to serve it`;
}

/**
 * A start of a disabled model, as its result's `disabled.message` says it: it was started all the same (or,
 * `alreadyRunning`, the start found it running), the gateway answers 409 for it until it is enabled, and how
 * to enable it.
 */
export function startedDisabledMessage(name: string, alreadyRunning = false): string {
  return `${name} is disabled: it ${alreadyRunning ? "runs" : "was started"}, but the gateway (/v1) refuses its requests (409 model_disabled) until it is enabled; ${ENABLE_ADVICE}`;
}
