/**
 * `synapse start-all --force` against the real app (production server, local link, real llama-server):
 * a host whose memory budget holds one of two models of about 21 MiB. The CLI's own output must say that
 * a start went over the budget, with its numbers; the event log is not the only place that says so.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyModel, type TinyModelOptions } from "../../host-agent/src/gguf/tiny-model";
import { freePorts } from "../../host-agent/test/harness/ports";
import { REPO_ROOT } from "../../test/harness/app-build";
import { startApp, type AppServer } from "../../test/harness/app-server";

const run = promisify(execFile);

/** About 21 MiB of f32 weights (as the gateway's eviction test uses). */
const SHAPE: TinyModelOptions = { embedding: 512, layers: 2, heads: 4, feedForward: 1024, contextLength: 4096 };

describe("synapse start-all --force (real app)", () => {
  let app: AppServer;

  beforeAll(async () => {
    app = await startApp({ name: "cli-force" });
    const ports = await freePorts(2);
    for (const [i, name] of ["alpha", "bravo"].entries()) {
      const file = path.join(app.dirs.modelRoot, `${name}.gguf`);
      await writeTinyModel(file, { ...SHAPE, seed: i + 1 });
      const created = await app.trpc.mutation("models.create", { name, filePath: file, port: ports[i], enabled: true, ctxSize: 256, threads: 1 });
      expect(created.error, JSON.stringify(created.error)).toBeUndefined();
    }
    // Room for one of them: alpha (first by name) fits, bravo does not.
    await app.db().host.updateMany({ where: { name: "local" }, data: { memoryBudgetMiB: 30 } });
  });
  afterAll(async () => {
    await app?.dispose();
  });

  it("says how many starts went over the memory budget, and prints each with its numbers", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "src/client/cli.ts"), "start-all", "--force"], {
      cwd: REPO_ROOT,
      env: { ...process.env, SYNAPSE_URL: app.url },
      timeout: 120_000,
    });
    const lines = stdout.trimEnd().split("\n");
    expect(lines).toContain("2 of 2 ready (1 started by --force over the memory budget)");
    const forced = lines.filter((l) => l.startsWith("started by --force over the memory budget: "));
    expect(forced).toHaveLength(1);
    expect(forced[0]).toMatch(/^started by --force over the memory budget: bravo needs 2\d\.\d MiB \(weights 2\d\.\d, KV cache \d+\.\d, compute \d+\.\d\); local has \d+\.\d of 30\.0 MiB left; /);
  });
});
