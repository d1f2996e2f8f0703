import { describe, expect, it } from "vitest";
import type { GatewayModel } from "./fleet-port";
import { readinessStep, RESTART_GAP_WAIT_MS } from "./readiness";
import { matchRoute } from "./routes";
import { findModel } from "./find-model";

const NOW = 1_000_000;
const base: GatewayModel = {
  id: "m1", name: "qwen", alias: null, hostId: "h", host: "local", upstream: { host: "127.0.0.1", port: 8081 }, unreachableWhy: null, serverApiKey: null, enabled: true,
  loadPolicy: "always", desired: "running", state: "ready", lastError: null, nextRestartAt: null, autoRestart: true, stateWrittenAt: null, parallel: 1, concurrency: 1, queueLimit: 8, idleMs: 60_000,
  readinessDeadlineMs: 30_000, createdS: 0, changedSinceFailure: false,
};
const m = (over: Partial<GatewayModel>): GatewayModel => ({ ...base, ...over });

describe("readinessStep", () => {
  it("proceeds when ready or unhealthy, waits while starting or stopping or wanted", () => {
    expect(readinessStep(base, NOW).kind).toBe("proceed");
    // A busy server answers /health late: unhealthy still serves (a dead one answers 502 from the proxy).
    expect(readinessStep(m({ state: "unhealthy" }), NOW).kind).toBe("proceed");
    expect(readinessStep(m({ state: "starting" }), NOW).kind).toBe("wait");
    expect(readinessStep(m({ state: "stopping" }), NOW).kind).toBe("wait");
    expect(readinessStep(m({ state: "stopped", desired: "running" }), NOW).kind).toBe("wait");
  });

  it("starts a stopped on-demand model; a stopped 'always' one is 409 saying how to start it", () => {
    expect(readinessStep(m({ state: "stopped", desired: "stopped", loadPolicy: "on-demand" }), NOW).kind).toBe("start");
    const s = readinessStep(m({ state: "stopped", desired: "stopped" }), NOW);
    expect(s.kind === "refuse" && s.error.status).toBe(409);
    expect(s.kind === "refuse" && s.error.message).toMatch(/Start button/);
    // The CLI's command, for a client at a terminal (a trial looked for it).
    expect(s.kind === "refuse" && s.error.message).toContain(`\`npm run synapse -- start ${m({}).name}\``);
  });

  it("stopping: a restart (still wanted) or an on-demand model's stop is waited for; an 'always' model a person stopped is 409 at once, not after its process ends", () => {
    expect(readinessStep(m({ state: "stopping", desired: "running" }), NOW).kind).toBe("wait");
    expect(readinessStep(m({ state: "stopping", desired: "stopped", loadPolicy: "on-demand" }), NOW).kind).toBe("wait");
    const s = readinessStep(m({ state: "stopping", desired: "stopped" }), NOW);
    expect(s.kind === "refuse" && [s.error.status, s.error.code]).toEqual([409, "model_stopped"]);
  });

  it("disabled: 409 whatever the state", () => {
    for (const state of ["ready", "stopped"]) {
      const s = readinessStep(m({ enabled: false, state, loadPolicy: "on-demand" }), NOW);
      expect(s.kind === "refuse" && [s.error.status, s.error.code]).toEqual([409, "model_disabled"]);
    }
  });

  it("backoff: 503 with Retry-After at the backoff's end and the reason", () => {
    const s = readinessStep(m({ state: "exited", nextRestartAt: NOW + 4_200, lastError: "exit code 1; last log lines:\n..." }), NOW);
    expect(s.kind === "refuse" && [s.error.status, s.error.options.retryAfterS]).toEqual([503, 5]);
    expect(s.kind === "refuse" && s.error.message).toContain("exit code 1");
  });

  it("exited with its restart due (its time passed): waited for, its start is under way; not told 'restarts in 1 s'", () => {
    // The fleet keeps the due time until the restart's `starting` is recorded (tens of ms after it).
    expect(readinessStep(m({ state: "exited", desired: "running", nextRestartAt: NOW - 30, stateWrittenAt: NOW - 30, lastError: "killed by SIGKILL" }), NOW).kind).toBe("wait");
    expect(readinessStep(m({ state: "exited", desired: "running", nextRestartAt: NOW, lastError: "killed by SIGKILL" }), NOW).kind).toBe("wait");
    // Not wanted any more (a stop under way): not waited for.
    expect(readinessStep(m({ state: "exited", desired: "stopped", nextRestartAt: NOW - 30, lastError: "killed by SIGKILL" }), NOW).kind).toBe("refuse");
  });

  it("exited with no restart planned: waited for while auto-restart is on and its state was written a moment ago (a restart that is due starts in ms); 503 for good with it off, or left so for longer", () => {
    // A trial polled through each restart: for ~25 ms between the restart's due time and `starting`, it was told
    // 503 model_failed, x-should-retry false, and the official client gave up as the model came back.
    expect(readinessStep(m({ state: "exited", desired: "running", nextRestartAt: null, stateWrittenAt: NOW - 25, lastError: "killed by SIGKILL" }), NOW).kind).toBe("wait");
    // Left so for longer than a restart's start takes: nothing is restarting it (auto-restart turned on after
    // the crash, the app restarted before the restart began); 503 for good at once, not at the readiness deadline.
    const stale = readinessStep(m({ state: "exited", desired: "running", nextRestartAt: null, stateWrittenAt: NOW - RESTART_GAP_WAIT_MS, lastError: "killed by SIGKILL" }), NOW);
    expect(stale.kind === "refuse" && [stale.error.status, stale.error.code, stale.error.options.shouldRetry]).toEqual([503, "model_failed", false]);
    const off = readinessStep(m({ state: "exited", desired: "running", nextRestartAt: null, autoRestart: false, lastError: "killed by SIGKILL" }), NOW);
    expect(off.kind === "refuse" && [off.error.status, off.error.code, off.error.options.shouldRetry]).toEqual([503, "model_failed", false]);
    // What to do, and why nothing will (a trial's client read only 'model "beta" exited: killed by SIGKILL').
    expect(off.kind === "refuse" && off.error.message).toBe('model "qwen" exited: killed by SIGKILL; the app does not restart it (auto-restart is off: Settings, Restart crashed servers): start it with its Start button in the dashboard or `npm run synapse -- start qwen`');
  });

  it("failed: 503 with a Retry-After and the reason, for either policy", () => {
    for (const loadPolicy of ["always", "on-demand"] as const) {
      const s = readinessStep(m({ state: "failed", loadPolicy, lastError: "cannot open model" }), NOW);
      expect(s.kind === "refuse" && s.error.status).toBe(503);
      expect(s.kind === "refuse" && s.error.options.retryAfterS).toBeGreaterThan(0);
      expect(s.kind === "refuse" && s.error.message).toContain("cannot open model");
    }
  });

  it("failed with a saved fix (its settings changed since): an on-demand model is started again, an always one is not", () => {
    const fixed = { state: "failed", desired: "running", changedSinceFailure: true, lastError: "exited with code 1 while loading" };
    expect(readinessStep(m({ ...fixed, loadPolicy: "on-demand" }), NOW).kind).toBe("start");
    // An always model is started by a person (Start, START ALL ENABLED), not by requests.
    const always = readinessStep(m({ ...fixed, loadPolicy: "always" }), NOW);
    expect(always.kind === "refuse" && always.error.message).toBe('model "qwen" failed: exited with code 1 while loading; fix it and start it again from the dashboard');
    // Disabled still wins.
    expect(readinessStep(m({ ...fixed, loadPolicy: "on-demand", enabled: false }), NOW).kind).toBe("refuse");
    // Unchanged: 503, saying that a saved change lets the next request try.
    const same = readinessStep(m({ ...fixed, loadPolicy: "on-demand", changedSinceFailure: false }), NOW);
    expect(same.kind === "refuse" && [same.error.status, same.error.message]).toEqual([
      503,
      'model "qwen" failed: exited with code 1 while loading; fix its settings (a saved change lets the next request try again) or start it from the dashboard',
    ]);
  });

  it("the reason is its one-line headline: no dangling 'last log lines:', and the advice not said twice", () => {
    const crashed = readinessStep(m({ state: "exited", nextRestartAt: NOW + 1_000, lastError: "exited (crashed: killed by SIGKILL); last log lines:\nline 1\nline 2" }), NOW);
    expect(crashed.kind === "refuse" && crashed.error.message).toBe('model "qwen" crashed and restarts in 1 s: exited (crashed: killed by SIGKILL)');
    const held = "cannot start qwen: port 8080 is held by pid 4242 (python3); stop that process, or give this model a free port (its Edit form, or models.update with port), then start it again";
    const failed = readinessStep(m({ state: "failed", lastError: held }), NOW);
    expect(failed.kind === "refuse" && failed.error.message).toBe(`model "qwen" failed: ${held}`);
    const other = readinessStep(m({ state: "failed", lastError: "cannot open model; last log lines:\nx" }), NOW);
    expect(other.kind === "refuse" && other.error.message).toBe('model "qwen" failed: cannot open model; fix it and start it again from the dashboard');
    // The log's telling line joins the reason; the reason's own advice still counts as said.
    const heldAfterExit = `exited with code 1 while loading; port 8080 is held by pid 4242 (python3); stop that process, then start it again; last log lines:\n0.00.001.000 E srv  start: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 8080`;
    const bound = readinessStep(m({ state: "failed", lastError: heldAfterExit }), NOW);
    expect(bound.kind === "refuse" && bound.error.message).toBe(
      "model \"qwen\" failed: exited with code 1 while loading; port 8080 is held by pid 4242 (python3); stop that process, then start it again; the log says: srv start: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 8080",
    );
  });

  it("a host the gateway cannot reach: 502 with why", () => {
    const s = readinessStep(m({ upstream: null, unreachableWhy: "over SSH" }), NOW);
    expect(s.kind === "refuse" && [s.error.status, s.error.message]).toEqual([502, "over SSH"]);
  });
});

describe("routes and names", () => {
  it("serves OpenAI's and llama-server's paths; any other /v1/ path is its own 404 (unknown); nothing else", () => {
    for (const p of ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/models", "/completion", "/tokenize", "/detokenize", "/infill", "/rerank", "/v1/rerank", "/props?model=a", "/slots?model=a"]) {
      expect(matchRoute(p), p).toBeDefined();
    }
    for (const p of ["/", "/api/health", "/v1", "/models/abc", "/_next/static/x.js", "/v1x/chat"]) expect(matchRoute(p), p).toBeUndefined();
    for (const p of ["/v1/other", "/v1/assistants", "/v1/responses/resp_1", "/v1/chat/completions/x"]) expect(matchRoute(p), p).toEqual({ kind: "unknown" });
  });

  it("/v1/models/{model} is OpenAI's retrieve, the name percent-decoded; /v1/models/ is the list", () => {
    expect(matchRoute("/v1/models/alpha")).toEqual({ kind: "model", name: "alpha" });
    expect(matchRoute("/v1/models/org%2Fqwen%20coder/")).toEqual({ kind: "model", name: "org/qwen coder" });
    expect(matchRoute("/v1/models/bad%E0")).toEqual({ kind: "model", name: "bad%E0" });
    expect(matchRoute("/v1/models/")).toEqual({ kind: "models" });
  });

  it("finds a model by registry name first, then by alias", () => {
    const models = [m({ id: "a", name: "one", alias: "two" }), m({ id: "b", name: "two" })];
    expect(findModel(models, "two")?.id).toBe("b");
    expect(findModel(models, "one")?.id).toBe("a");
    expect(findModel([models[0]!], "two")?.id).toBe("a");
    expect(findModel(models, "three")).toBeUndefined();
    // The registry may hold "" for no alias: it names nothing.
    expect(findModel([m({ id: "c", name: "four", alias: "" })], "")).toBeUndefined();
  });
});
