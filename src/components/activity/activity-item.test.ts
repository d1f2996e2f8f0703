import { describe, expect, it } from "vitest";
import { causeText, formatAgo, fromHistory, fromLive, matches, mergeActivity, withNames, type ActivityItem, type HistoryEvent } from "./activity-item";

const names = { models: new Map([["m1", "alpha"]]), hosts: new Map([["h1", "mac"]]) };

function item(id: number, over: Partial<ActivityItem> = {}): ActivityItem {
  return { id, at: "2026-11-30T03:00:00.000Z", kind: "state", modelId: "m1", modelName: "alpha", hostId: "h1", hostName: "mac", state: "ready", message: `event ${id}`, cause: null, ...over };
}

describe("activity rows", () => {
  it("a live state event becomes a row with the names the page knows and its stop cause", () => {
    const raw = { id: "42", data: { type: "event", id: 42, at: "2026-11-30T03:00:00.000Z", kind: "state", modelId: "m1", hostId: "h1", state: "stopped", message: "alpha: stopped", data: { cause: "idle", pid: 7 } } };
    expect(fromLive(raw, names)).toEqual(item(42, { state: "stopped", message: "alpha: stopped", cause: "idle" }));
    expect(causeText(fromLive(raw, names)!)).toBe("unloaded after its idle time");
  });

  it("the stop cause is said for a server that stopped or exited, not for an action or a running state", () => {
    expect(causeText(item(1, { state: "exited", cause: "crash" }))).toBe("crashed");
    expect(causeText(item(1, { state: "stopped", cause: "evicted" }))).toBe("evicted to make room");
    expect(causeText(item(1, { kind: "action", state: null, cause: "requested" }))).toBeNull();
    expect(causeText(item(1, { state: "ready", cause: "idle" }))).toBeNull();
    expect(causeText(item(1, { state: "stopped", cause: null }))).toBeNull();
  });

  it("a live event of a model created since the page loaded gets its name once the page knows it", () => {
    const unnamed = item(3, { modelId: "m2", modelName: null, hostId: "h2", hostName: null });
    expect(withNames(unnamed, names)).toBe(unnamed);
    expect(withNames(unnamed, { models: new Map([["m2", "beta"]]), hosts: new Map([["h2", "linux"]]) })).toEqual({ ...unnamed, modelName: "beta", hostName: "linux" });
    const named = item(4);
    expect(withNames(named, names)).toBe(named);
  });

  it("a live event of an unknown model has no name; log lines and untracked items are no rows", () => {
    expect(fromLive({ id: "43", data: { type: "event", id: 43, at: "2026-11-30T03:00:00.000Z", kind: "action", modelId: "m9", hostId: null, state: null, message: "x", data: null } }, names)).toMatchObject({ id: 43, modelName: null, hostName: null, cause: null });
    expect(fromLive({ id: "43.2", data: { type: "log", at: "2026-11-30T03:00:00.000Z", modelId: "m1", hostId: null, line: "hello" } }, names)).toBeNull();
    expect(fromLive({ type: "event", kind: "action", message: "no id" }, names)).toBeNull();
  });

  it("a history event keeps its names; an unknown cause is none", () => {
    const e = { type: "event", id: 5, at: "2026-11-30T03:00:00.000Z", kind: "state", modelId: null, hostId: "h2", state: "disconnected", message: "host linux: link disconnected", data: { cause: "gremlins" }, modelName: null, hostName: "linux" } as HistoryEvent;
    expect(fromHistory(e)).toEqual({ id: 5, at: e.at, kind: "state", modelId: null, modelName: null, hostId: "h2", hostName: "linux", state: "disconnected", message: e.message, cause: null });
  });

  it("live filters match the query's: a model filter drops fleet and host events", () => {
    expect(matches(item(1), { modelId: "m1" })).toBe(true);
    expect(matches(item(1, { modelId: null }), { modelId: "m1" })).toBe(false);
    expect(matches(item(1, { kind: "action" }), { kind: "state" })).toBe(false);
    expect(matches(item(1, { kind: "action" }), {})).toBe(true);
  });

  it("merges live events above the pages, newest first, each id once, dropping what the pages already hold", () => {
    const pages = [[item(10), item(9)], [item(8)]];
    const live = [item(11), item(13), item(12), item(10), item(14, { kind: "action" })];
    expect(mergeActivity(live, pages, 10, {}).map((i) => i.id)).toEqual([14, 13, 12, 11, 10, 9, 8]);
    expect(mergeActivity(live, pages, 10, { kind: "state" }).map((i) => i.id)).toEqual([13, 12, 11, 10, 9, 8]);
    // After a refetch moved liveFrom up to 12, 11 and 12 come from the pages.
    expect(mergeActivity(live, [[item(12), item(11), item(10)]], 12, {}).map((i) => i.id)).toEqual([14, 13, 12, 11, 10]);
  });

  it("says how long ago in the largest whole unit", () => {
    expect(formatAgo(-3000)).toBe("just now");
    expect(formatAgo(4999)).toBe("just now");
    expect(formatAgo(42_000)).toBe("42 s ago");
    expect(formatAgo(3 * 60_000 + 59_000)).toBe("3 min ago");
    expect(formatAgo(5 * 3_600_000 + 1)).toBe("5 h ago");
    expect(formatAgo(49 * 3_600_000)).toBe("2 d ago");
  });
});
