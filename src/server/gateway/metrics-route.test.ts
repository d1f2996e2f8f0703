import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMetricsRequest, serveMetrics } from "./metrics-route";

const TOKEN = "front-path-token-0123456789";

describe("GET /api/metrics on the front path", () => {
  let server: http.Server;
  let url: string;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (isMetricsRequest(req)) void serveMetrics(req, res, { allowedHosts: [], listenHost: "127.0.0.1", apiToken: TOKEN }, async () => ({ text: async () => ({ body: "synapse_up 1\n", contentType: "text/plain; version=0.0.4; charset=utf-8" }) }));
      else {
        res.writeHead(404);
        res.end("next");
      }
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("answers the registry's text with the token, 401 without it, as Next's guard does", async () => {
    const ok = await fetch(`${url}/api/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(await ok.text()).toBe("synapse_up 1\n");
    const refused = await fetch(`${url}/api/metrics`);
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("UNAUTHORIZED");
  });
  it("refuses a foreign Host (DNS rebinding) and leaves other methods and paths to Next", async () => {
    const res = await new Promise<number>((resolve, reject) => {
      const r = http.get(`${url}/api/metrics`, { headers: { host: "evil.example", authorization: `Bearer ${TOKEN}` } }, (m) => {
        m.resume();
        resolve(m.statusCode ?? 0);
      });
      r.once("error", reject);
    });
    expect(res).toBe(403);
    expect((await fetch(`${url}/api/metrics`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(404);
    expect((await fetch(`${url}/api/metricsx`)).status).toBe(404);
  });
});
