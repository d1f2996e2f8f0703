/**
 * Metrics in the production app (the gateway's front path and Next's route
 * handler in one process, sharing one registry): completions through the
 * gateway show up in GET /api/metrics (guarded by the token), the fleet row
 * draws a sparkline of generated tokens/s, and the model page draws charts
 * whose last point is the API's (metrics.model).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApp, type AppServer } from "../../test/harness/app-server";
import { expectTestId, openPage, useBrowser } from "../harness/browser";
import { arrangeModels, WIDE, type ArrangedModel } from "./fleet-helpers";

const browser = useBrowser();
const TOKEN = "metrics-e2e-token-0123456789abcdef";
const COMPLETIONS = 5;

/** Pixels of a canvas that are not transparent (runs in the page). */
function paintedPixels(c: HTMLCanvasElement): number {
  const d = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i]! > 0) n++;
  return n;
}

interface Point {
  t: number;
  generatedTokensPerS: number | null;
  promptTokensPerS: number | null;
}

describe("metrics (production build)", () => {
  let app: AppServer;
  let model: ArrangedModel;

  beforeAll(async () => {
    app = await startApp({ name: "dashboard-metrics", env: { SYNAPSE_API_TOKEN: TOKEN } });
    [model] = (await arrangeModels(app, [{ name: "meter", enabled: true }])) as [ArrangedModel];
    const r = await app.trpc.mutation<{ state: string; error: string | null }>("servers.start", { id: model.id, wait: true });
    expect(r.data?.state, JSON.stringify(r)).toBe("ready");
  });
  afterAll(async () => {
    await app?.dispose();
  });

  it("counts the gateway's completions in /api/metrics, which needs the token", async () => {
    for (let i = 0; i < COMPLETIONS; i++) {
      const res = await app.fetch("/v1/chat/completions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "meter", messages: [{ role: "user", content: `hello ${i}` }], max_tokens: 8, grammar: "root ::= [a-z]+" }),
      });
      expect(res.status, await res.clone().text()).toBe(200);
      await res.text();
    }
    expect((await app.fetch("/api/metrics", { auth: false })).status).toBe(401);
    const res = await app.fetch("/api/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    // Recorded by the front path, served by Next's route: one registry.
    expect(text).toContain(`synapse_gateway_requests_total{model="meter",host="local",key="admin",status="200"} ${COMPLETIONS}`);
    expect(text).toMatch(/synapse_host_memory_total_bytes\{host="local"\} \d+/);
  });

  it("the fleet row draws a sparkline; the model page draws charts whose last point is the API's", async () => {
    // Points every 5 s: wait for one with a generation rate (the completions above, or these).
    await expect
      .poll(
        async () => {
          await app.fetch("/v1/chat/completions", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "meter", messages: [{ role: "user", content: "more" }], max_tokens: 8, grammar: "root ::= [a-z]+" }) }).then((r) => r.text());
          const r = await app.trpc.query<{ points: Point[] }>("metrics.model", { id: model.id, range: "hour" });
          return r.data?.points.some((p) => (p.generatedTokensPerS ?? 0) > 0) ?? false;
        },
        { timeout: 30_000, interval: 1000 },
      )
      .toBe(true);

    const { page, screenshot, context } = await openPage(browser(), app, { name: "metrics-fleet", viewport: WIDE });
    await page.goto("/");
    const spark = await expectTestId(page, "sparkline");
    // Painted once it has two known points (the first read has no rate): pixels in its canvas.
    await expect.poll(() => spark.locator("canvas").count(), { timeout: 15_000 }).toBeGreaterThan(0);
    await expect.poll(() => spark.locator("canvas").evaluate(paintedPixels), { timeout: 20_000, interval: 1000 }).toBeGreaterThan(20);
    await screenshot("fleet");

    await page.goto(`/models/${model.id}`);
    const chart = await expectTestId(page, "chart-tokens");
    // The chart's last point (read back from uPlot's data) and the API's last point: the same once both have the newest.
    await expect
      .poll(
        async () => {
          const [lastT, lastValues] = await Promise.all([chart.getAttribute("data-last-t"), chart.getAttribute("data-last-values")]);
          const api = await app.trpc.query<{ points: Point[] }>("metrics.model", { id: model.id, range: "hour" });
          const last = api.data?.points.at(-1);
          if (!last || !lastT) return "no points yet";
          return JSON.stringify({ t: Number(lastT), values: JSON.parse(lastValues ?? "[]") as unknown }) === JSON.stringify({ t: last.t, values: [last.generatedTokensPerS, last.promptTokensPerS] }) ? "same" : `chart ${lastT} ${lastValues} vs API ${last.t} ${last.generatedTokensPerS},${last.promptTokensPerS}`;
        },
        { timeout: 20_000, interval: 500 },
      )
      .toBe("same");
    // Drawn: the chart's canvas has coloured pixels.
    expect(await chart.locator("canvas").evaluate(paintedPixels)).toBeGreaterThan(100);
    for (const id of ["chart-requests", "chart-latency", "chart-memory"]) await expectTestId(page, id);
    await screenshot("model");
    await context.close();
  });
});
