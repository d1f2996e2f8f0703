/**
 * What the `synapse` CLI says when the call fails, over real loopback sockets: no app at SYNAPSE_URL (the
 * connection is refused), the app's guard refusing a missing token (its 401 body, made by guard.ts's own
 * checkRequest as src/proxy.ts sends it), and something at SYNAPSE_URL that is not the app (a plain web
 * server's HTML page).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { checkRequest } from "~/server/http/guard";
import { main } from "./cli";

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function listen(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A loopback port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

async function status(url: string): Promise<{ code: number; stderr: string }> {
  const before = process.env.SYNAPSE_URL;
  process.env.SYNAPSE_URL = url;
  let stderr = "";
  try {
    const code = await main(["status"], () => {}, (s) => (stderr += s));
    return { code, stderr };
  } finally {
    if (before === undefined) delete process.env.SYNAPSE_URL;
    else process.env.SYNAPSE_URL = before;
  }
}

describe("synapse CLI when the call fails", () => {
  it("no app at SYNAPSE_URL: says it cannot reach it and why, not that it 'answered an error'", async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const res = await status(url);
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(new RegExp(`^synapse: cannot reach ${url}: fetch failed: connect ECONNREFUSED 127\\.0\\.0\\.1:\\d+ `));
    expect(res.stderr).not.toMatch(/answered/);
  });

  it("the app refuses a missing token: its status and message (set SYNAPSE_API_TOKEN), not tRPC's 'Unable to transform response'", async () => {
    const url = await listen((req, res) => {
      const verdict = checkRequest({ method: req.method ?? "GET", pathname: new URL(req.url ?? "/", "http://x").pathname, headers: { get: (n) => (req.headers[n.toLowerCase()] as string | undefined) ?? null } }, { allowedHosts: [], listenHost: "127.0.0.1", apiToken: "a-token-of-sixteen-chars" });
      const body = verdict.ok ? { result: { data: [] } } : { error: { code: verdict.code, message: verdict.message } };
      res.writeHead(verdict.ok ? 200 : verdict.status, { "content-type": "application/json" }).end(JSON.stringify(body));
    });
    const res = await status(url);
    expect(res.code).toBe(3);
    expect(res.stderr).toBe(`synapse: ${url} answered 401: missing or wrong API token: send Authorization: Bearer <SYNAPSE_API_TOKEN>\nsynapse: the app asks for its API token: set SYNAPSE_API_TOKEN to the app's token (SYNAPSE_API_TOKEN=… npm run synapse -- …)\n`);
  });

  it("something else at SYNAPSE_URL (an HTML page): says it is not the app's API", async () => {
    const url = await listen((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<!DOCTYPE html><html><body>hello</body></html>"));
    const res = await status(url);
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(new RegExp(`^synapse: ${url} did not answer as the app's API does \\(.*not valid JSON\\); is SYNAPSE_URL the app's address\\?\\n$`));
  });
});
