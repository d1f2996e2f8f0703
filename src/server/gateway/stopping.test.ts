import { describe, expect, it } from "vitest";
import { linkLostOf, linkLostUnderRequest, stoppedUnderRequest, stoppingOf } from "./stopping";

const event = (state: string | null, message: string, kind = "state", previous?: string) => ({ kind, state, modelId: "m1", message, ...(previous ? { data: { previous } } : {}) });

describe("stoppingOf: which fleet events end the requests a model's server answers", () => {
  it("a stop that began, and an end without one (a crash), with the event's words after the name", () => {
    expect(stoppingOf(event("stopping", "alpha: stopping (stopped on request)"))).toEqual({ modelId: "m1", why: "stopping (stopped on request)" });
    expect(stoppingOf(event("exited", "alpha: exited (crashed: killed by SIGSEGV)"))).toEqual({ modelId: "m1", why: "exited (crashed: killed by SIGSEGV)", ended: true });
    expect(stoppingOf(event("failed", "alpha: failed (crashed: exited with code 134)"))).toEqual({ modelId: "m1", why: "failed (crashed: exited with code 134)", ended: true });
  });

  it("a stop on its host (another agent: no stopping before it), told once its server has ended, as a stop", () => {
    const onHost = "alpha: stopped on its host, outside this app (stopped on the host by another agent (pid 4242, e.g. stop-metal-servers)); left stopped until it is started again";
    expect(stoppingOf(event("stopped", onHost, "state", "ready"))).toEqual({ modelId: "m1", why: onHost.slice("alpha: ".length) });
    expect(stoppingOf(event("stopped", "alpha: stopped (stopped on its host: stopped on the host by another agent (pid 4242))", "state", "unhealthy"))?.why).toBe("stopped (stopped on its host: stopped on the host by another agent (pid 4242))");
    // The end of a stop already noticed (its stopping), or of a server already ended.
    for (const previous of ["stopping", "exited", "failed", "stopped"]) expect(stoppingOf(event("stopped", "alpha: stopped (stopped on request)", "state", previous))).toBeNull();
  });

  it("not the states of a server that runs or is ended by a stop already noticed, nor other kinds of event", () => {
    for (const state of ["starting", "ready", "unhealthy", "stopped"]) expect(stoppingOf(event(state, `alpha: ${state}`))).toBeNull();
    expect(stoppingOf(event("stopping", "alpha: stopping", "log"))).toBeNull();
    expect(stoppingOf({ ...event("exited", "alpha: exited"), modelId: null })).toBeNull();
  });

  it("tells the client a stop from a crash: 503, Retry-After 1 s, different codes", () => {
    const stop = stoppedUnderRequest("alpha", "stopping (stop requested)");
    expect(stop).toMatchObject({ status: 503, code: "model_stopping", options: { retryAfterS: 1 } });
    const crash = stoppedUnderRequest("alpha", "exited (crashed: killed by SIGSEGV)", true);
    expect(crash).toMatchObject({ status: 503, code: "model_server_exited", options: { retryAfterS: 1 } });
    expect(crash.message).toBe('model "alpha": its server exited (crashed: killed by SIGSEGV); the request was ended with it; sent again, it is told when the model restarts (503, Retry-After) and answered once it runs, or told why not');
  });
});

describe("linkLostOf: a host's link lost ends the requests its models answer through it", () => {
  const host = (state: string, previous: string | undefined, message = `host mac: link ${state} (connect ECONNREFUSED 127.0.0.1:22)`) => ({ kind: "host", state, modelId: null, hostId: "h1", message, ...(previous ? { data: { previous } } : {}) });

  it("a host event from connected to any other state, with its words after the host's name", () => {
    expect(linkLostOf(host("disconnected", "connected"))).toEqual({ hostId: "h1", why: "link disconnected (connect ECONNREFUSED 127.0.0.1:22)" });
    expect(linkLostOf(host("failed", "connected"))?.why).toBe("link failed (connect ECONNREFUSED 127.0.0.1:22)");
  });

  it("not a link that comes up, one that was not up, nor other kinds of event", () => {
    expect(linkLostOf(host("connected", "connecting"))).toBeNull();
    expect(linkLostOf(host("disconnected", "connecting"))).toBeNull();
    expect(linkLostOf(host("disconnected", undefined))).toBeNull();
    expect(linkLostOf({ ...host("disconnected", "connected"), kind: "state" })).toBeNull();
    expect(linkLostOf({ ...host("disconnected", "connected"), hostId: null })).toBeNull();
  });

  it("not an agent started again on a connection that stayed up (its channels carry on)", () => {
    const restart = { ...host("connecting", "connected", "host mac: the agent session ended (exit code 1); starting the agent again on the same connection (requests to its models carry on)"), data: { previous: "connected", agentRestart: true } };
    expect(linkLostOf(restart)).toBeNull();
    // The same move without the mark is a link lost.
    expect(linkLostOf({ ...restart, data: { previous: "connected" } })).not.toBeNull();
  });

  it("a connection that had been up ending while its agent was being started again is a link lost", () => {
    expect(linkLostOf({ ...host("disconnected", "connecting"), data: { previous: "connecting", connectionLost: true } })).toEqual({ hostId: "h1", why: "link disconnected (connect ECONNREFUSED 127.0.0.1:22)" });
  });

  it("tells the client 502 host_unreachable with the model, its host and the link's words, Retry-After 2 s", () => {
    const err = linkLostUnderRequest("alpha", "mac", "link disconnected (read ECONNRESET)");
    expect(err).toMatchObject({ status: 502, code: "host_unreachable", options: { retryAfterS: 2 } });
    expect(err.message).toBe('model "alpha" (host mac): the gateway lost the host\'s link while the request was answered (link disconnected (read ECONNRESET)); the request was ended; sent again, it is answered once the link is back');
  });
});
