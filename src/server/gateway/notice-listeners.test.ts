/**
 * notice-listeners.ts: a stop notice reaches every listener even when one before it throws, and the throw
 * is reported with what was thrown; a removed listener hears nothing more.
 */
import { expect, it } from "vitest";
import type { ModelStopping } from "./stopping";
import { createListeners, createOnceListeners, createStoppingListeners, STOPPING_LISTENER_FAILED } from "./notice-listeners";

const notice: ModelStopping = { modelId: "m1", why: "stopping (stopped on request)" };

it("a listener that throws does not keep the notice from the ones after it, and is reported with its error", () => {
  const reported: [string, unknown][] = [];
  const listeners = createStoppingListeners((what, err) => reported.push([what, err]));
  const heard: string[] = [];
  const broken = new Error("the request's socket is gone");
  listeners.add((s) => heard.push(`first ${s.modelId}`));
  listeners.add(() => {
    throw broken;
  });
  listeners.add(() => {
    // Not only Errors are thrown.
    throw "a string";
  });
  listeners.add((s) => heard.push(`last ${s.why}`));

  expect(() => listeners.notify(notice)).not.toThrow();
  expect(heard).toEqual(["first m1", "last stopping (stopped on request)"]);
  expect(reported).toEqual([
    [STOPPING_LISTENER_FAILED, broken],
    [STOPPING_LISTENER_FAILED, "a string"],
  ]);
  expect(STOPPING_LISTENER_FAILED).toBe("ending the requests of a stopping server failed");
});

it("a removed listener is not called; one that removes itself while called does not stop the rest", () => {
  const listeners = createStoppingListeners(() => undefined);
  const heard: string[] = [];
  const offGone = listeners.add(() => heard.push("gone"));
  const offOnce = listeners.add(() => {
    heard.push("once");
    offOnce();
  });
  listeners.add(() => heard.push("stays"));
  offGone();

  listeners.notify(notice);
  listeners.notify({ ...notice, ended: true });
  expect(heard).toEqual(["once", "stays", "stays"]);
});

it("notify's promise waits for the promises listeners return (the worker's bridge counting its requests), and a rejection is reported as a throw is", async () => {
  const reported: [string, unknown][] = [];
  const listeners = createListeners<string>("telling the gateway of the app's shutdown failed", (what, err) => reported.push([what, err]));
  let counted!: () => void;
  const lost = new Error("the worker is gone");
  listeners.add(() => new Promise<void>((r) => (counted = r)));
  listeners.add(() => Promise.reject(lost));
  listeners.add(() => 3);

  let settled = false;
  const told = listeners.notify("shutdown").then(() => (settled = true));
  await new Promise((r) => setTimeout(r, 10));
  expect(settled, "waits for the listener that has not finished").toBe(false);
  counted();
  await told;
  expect(settled).toBe(true);
  expect(reported).toEqual([["telling the gateway of the app's shutdown failed", lost]]);
  // None returned a promise: settled at once.
  await expect(createListeners<string>("x", () => undefined).notify("n")).resolves.toBeUndefined();
});

it("a notice given once (the app's shutdown): a listener added after it is told it, in a microtask, unless removed first; a second notice reaches no one", async () => {
  const listeners = createOnceListeners<string>("telling the gateway of the app's shutdown failed", () => undefined);
  const heard: string[] = [];
  listeners.add((n) => heard.push(`early ${n}`));
  await listeners.notify("first");
  await listeners.notify("second");
  expect(heard).toEqual(["early first"]);

  listeners.add((n) => heard.push(`late ${n}`));
  const offGone = listeners.add((n) => heard.push(`gone ${n}`));
  offGone();
  expect(heard, "not within add itself").toEqual(["early first"]);
  await Promise.resolve();
  expect(heard).toEqual(["early first", "late first"]);
});
