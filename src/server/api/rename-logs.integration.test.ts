/**
 * A renamed model's log history through the API, as the model page reads it:
 * on a real runtime (SQLite file, local link, real llama-server with a tiny
 * model) a model started and stopped, then renamed with `models.update`,
 * shows its earlier run in `servers.logs` under the new name.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestDirs } from "../../../host-agent/test/harness/fixtures";
import { freePort } from "../../../host-agent/test/harness/ports";
import { tinyModel } from "../../../host-agent/test/harness/tiny-model";
import { type AppRuntime } from "../runtime";
import { createCaller } from "./root";
import { callerRuntime, type CallerRuntime } from "../services/fleet/testing/caller-runtime";

let dirs: TestDirs;
let runtime: AppRuntime;
let caller: ReturnType<typeof createCaller>;

let fx: CallerRuntime;

beforeAll(async () => {
  fx = await callerRuntime("synapse-rename-logs-api-", "rename-logs");
  ({ dirs, runtime, caller } = fx);
});

afterAll(async () => {
  await fx?.dispose();
});

describe("models.update renames a stopped model", () => {
  it("and servers.logs under the new name shows the run it had under the old one", async () => {
    const file = await tinyModel(dirs.modelRoot, "tiny.gguf");
    const m = await caller.models.create({ name: "old-name", filePath: file, port: await freePort() });
    expect((await caller.servers.start({ id: m.id })).state).toBe("ready");
    expect((await caller.servers.stop({ id: m.id })).state).toBe("stopped");
    const before = await caller.servers.logs({ id: m.id, lines: 5000 });

    const saved = await caller.models.update({ id: m.id, name: "new-name" });
    expect(saved).toMatchObject({ name: "new-name", logMove: { moved: true } });

    const after = await caller.servers.logs({ id: m.id, lines: 5000 });
    expect(after).toMatchObject({ name: "new-name", logPath: path.join(dirs.stateDir, "logs", "new-name.log") });
    expect(after.lines).toEqual(before.lines);
    expect(after.lines.some((l) => l.startsWith("=== synapse host-agent: starting old-name at "))).toBe(true);
    expect(after.lines.some((l) => /listening on http:\/\/127\.0\.0\.1:\d+/.test(l))).toBe(true);
  });
});
