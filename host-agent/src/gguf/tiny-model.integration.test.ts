/** The tiny model written by our GGUF writer loads in a real llama-server and answers. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentOptions, AgentPool, specFor, testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { llamaServerBin } from "../../test/harness/llama-server.ts";
import { freePort } from "../../test/harness/ports.ts";
import { tinyModel } from "../../test/harness/tiny-model.ts";

let dirs: TestDirs;
const pool = new AgentPool();
beforeAll(async () => {
  dirs = await testDirs();
});
afterAll(async () => {
  await pool.stopEverything();
  await dirs.cleanup();
});

describe("tiny model in a real llama-server", () => {
  it("loads: /health 200, /completion answers with text", async () => {
    const model = await tinyModel(dirs.modelRoot);
    const agent = pool.make(agentOptions(dirs, llamaServerBin()));
    const port = await freePort();
    const status = await agent.call("start", { spec: specFor("tiny", model, port) });
    expect(status.state).toBe("ready");

    const health = await fetch(`http://127.0.0.1:${port}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });

    const res = await fetch(`http://127.0.0.1:${port}/completion`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "Hello", n_predict: 8 }) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { content: string; tokens_predicted: number };
    expect(typeof body.content).toBe("string");
    expect(body.content.length).toBeGreaterThan(0);
    expect(body.tokens_predicted).toBe(8);

    const props = (await (await fetch(`http://127.0.0.1:${port}/props`)).json()) as { default_generation_settings?: { n_ctx?: number } };
    expect(props.default_generation_settings?.n_ctx).toBe(256);
  });
});
