/**
 * A loading model's progress as the app tracks it: a real start of the tiny
 * model (llama-server, through the local agent) leaves its start → ready in
 * the event log; the next load (a stand-in for a slow one: the tiny model
 * loads in ~50 ms, so its "starting" event and load log lines are sent on
 * the real event bus) is measured against that duration and follows the
 * log's load steps.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Model } from "~/generated/prisma/client";
import { testLogger } from "~/server/services/fleet/testing/db";
import { fleetFixture, waitFor, type FleetFixture } from "~/server/services/fleet/testing/fixture";
import { createAppMetrics, type AppMetrics } from "./app-metrics";

describe("load progress (real event log and bus)", () => {
  let f: FleetFixture;
  let metrics: AppMetrics;
  let model: Model;

  beforeAll(async () => {
    f = await fleetFixture();
    model = await f.addModel("loader", { enabled: true });
    const r = await f.fleet.start(model.id, { wait: true });
    expect(r.state, r.error ?? "").toBe("ready");
    await f.fleet.stop(model.id);
    // Made after that load: what it knows of it comes from the event log (as after the app's restart).
    metrics = createAppMetrics({ db: f.t.db, fleet: f.fleet, events: f.events, log: testLogger(), intervalMs: 0 });
  });
  afterAll(async () => {
    await metrics?.close();
    await f?.dispose();
  });

  it("measures a load against the last one and follows the log's load steps", async () => {
    expect(metrics.loadProgress(model.id)).toBeNull();
    await f.events.append({ kind: "state", modelId: model.id, hostId: f.host.id, state: "starting", message: "starting (stand-in for a slow load)" });
    const first = await waitFor("the load is tracked with the last load's duration", async () => {
      const p = metrics.loadProgress(model.id);
      return p && p.expectedMs !== null ? p : null;
    });
    expect(first.expectedMs).toBeGreaterThan(0);
    expect(first.stage).toBeNull();

    f.events.logLine(model.id, f.host.id, "load_tensors: loading model tensors, this can take a while... (load_mode = mmap)");
    await waitFor("the log's step", async () => metrics.loadProgress(model.id)?.stage === "loading tensors");
    f.events.logLine(model.id, f.host.id, "....................................................................................................");
    const tensors = await waitFor("tensors loaded", async () => {
      const p = metrics.loadProgress(model.id);
      return p?.stage === "tensors loaded" ? p : null;
    });
    expect(tensors.fraction).toBeGreaterThanOrEqual(0.8);
    expect(metrics.loadProgressAll().has(model.id)).toBe(true);

    // Ready: tracking ends, and the next load is measured against this one.
    await f.events.append({ kind: "state", modelId: model.id, hostId: f.host.id, state: "ready", message: "ready (stand-in)" });
    await waitFor("tracking ends at ready", async () => metrics.loadProgress(model.id) === null);
    await f.events.append({ kind: "state", modelId: model.id, hostId: f.host.id, state: "starting", message: "starting again (stand-in)" });
    const again = await waitFor("the next load", async () => metrics.loadProgress(model.id));
    expect(again.expectedMs).toBeGreaterThanOrEqual(tensors.elapsedMs);
    // The tick sees the model's recorded state (stopped): not loading.
    await metrics.tick();
    expect(metrics.loadProgress(model.id)).toBeNull();
  });
});
