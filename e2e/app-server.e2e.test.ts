/**
 * The production-mode harness itself, and what the production server does
 * with its configuration before anything else (the checks a container's
 * environment meets first).
 */
import { describe, expect, it } from "vitest";
import { startApp } from "../test/harness/app-server";

const TOKEN = "e2e-token-0123456789abcdef";

describe("app server harness (production build, image command)", () => {
  it("stops start-up on a bad variable, naming it", async () => {
    const app = await startApp({ name: "bad-env", env: { LOG_LEVEL: "loud" }, waitForHealth: false });
    const exit = await app.exited;
    expect(exit.code).toBe(1);
    expect(app.stderr()).toContain("LOG_LEVEL");
  });

  it("refuses to listen beyond loopback without an API token", async () => {
    const app = await startApp({ name: "no-token", env: { HOSTNAME: "0.0.0.0" }, waitForHealth: false });
    expect((await app.exited).code).toBe(1);
    expect(app.stderr()).toContain("SYNAPSE_API_TOKEN");
  });

  it("with a token: the API needs it, /api/health stays open", async () => {
    const app = await startApp({ name: "token", env: { SYNAPSE_API_TOKEN: TOKEN } });
    expect((await app.fetch("/api/health", { auth: false })).status).toBe(200);
    expect((await app.fetch("/api/trpc/models.list", { auth: false })).status).toBe(401);
    const listed = await app.trpc.query<unknown[]>("models.list");
    expect(listed).toMatchObject({ status: 200, data: [] });
    const stopped = await app.stop();
    expect(stopped).toMatchObject({ code: 0, killed: false });
  });

  it("stop() kills an app that does not exit by the deadline", async () => {
    const app = await startApp({ name: "frozen" });
    process.kill(app.pid, "SIGSTOP");
    const stopped = await app.stop("SIGTERM", { timeoutMs: 1000 });
    expect(stopped).toMatchObject({ killed: true, signal: "SIGKILL" });
    expect(app.running).toBe(false);
  });
});
