/** A stop's cause in the words of STOP_CAUSE_TEXT, beside the state badge (fleet row, model page), rendered by React itself. */
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { StopCause, stopCauseBesideBadge, stopCauseText } from "./stop-cause";

describe("stopCauseBesideBadge", () => {
  it("says why a server is not running", () => {
    expect(stopCauseBesideBadge("stopped", "requested")).toBe("stopped on request");
    expect(stopCauseBesideBadge("stopped", "shutdown")).toBe("stopped at app shutdown");
    expect(stopCauseBesideBadge("stopped", "idle")).toBe("unloaded after its idle time");
    expect(stopCauseBesideBadge("failed", "deadline")).toBe("readiness deadline passed");
    // Failed after crashing too often: the badge says FAILED, the cause why.
    expect(stopCauseBesideBadge("failed", "crash")).toBe("crashed");
  });

  it("says nothing the badge already says (CRASHED), nor for a running server or an unknown cause", () => {
    expect(stopCauseBesideBadge("exited", "crash")).toBeNull();
    expect(stopCauseText("exited", "crash")).toBe("crashed");
    expect(stopCauseBesideBadge("exited", "worker-lost")).toBe("an RPC worker was lost");
    expect(stopCauseBesideBadge("ready", "requested")).toBeNull();
    expect(stopCauseBesideBadge("stopping", "requested")).toBeNull();
    expect(stopCauseBesideBadge("stopped", null)).toBeNull();
    expect(stopCauseBesideBadge("stopped", "gremlins")).toBeNull();
  });

  it("renders as the stop-cause element, or not at all", () => {
    expect(renderToStaticMarkup(createElement(StopCause, { state: "stopped", cause: "requested", besideBadge: true }))).toBe('<span class="faint" data-testid="stop-cause" data-cause="requested">stopped on request</span>');
    expect(renderToStaticMarkup(createElement(StopCause, { state: "exited", cause: "crash", besideBadge: true }))).toBe("");
    expect(renderToStaticMarkup(createElement(StopCause, { state: "exited", cause: "crash" }))).toContain(">crashed</span>");
  });
});
