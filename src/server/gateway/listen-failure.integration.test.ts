/**
 * The line the app prints when it cannot take HOSTNAME:PORT (listen-failure.ts),
 * with a real listener holding the port: this test's own process, named by pid;
 * and the look start.mjs takes before a build (listenProblem).
 */
import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listenFailureText, listenProblem } from "./listen-failure";

describe("listenFailureText", () => {
  let held: net.Server;
  let port: number;
  beforeAll(async () => {
    held = net.createServer();
    await new Promise<void>((r) => held.listen(0, "127.0.0.1", r));
    port = (held.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => held.close(() => r())));

  it("a port in use: its holder's pid and command line, and a free port to use instead", async () => {
    const text = await listenFailureText({ host: "127.0.0.1", port }, "EADDRINUSE", `listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
    expect(text).toMatch(new RegExp(`^port ${port} is in use \\(by pid ${process.pid}, [^)]*node[^;]*\\); stop that process or set PORT to a free port \\(e\\.g\\. PORT=\\d+, free now\\)$`));
    const suggested = Number(/PORT=(\d+)/.exec(text)![1]);
    expect(suggested).toBeGreaterThan(port);
    // The suggestion is really free: a listener takes it.
    const probe = net.createServer();
    await new Promise<void>((resolve, reject) => probe.once("error", reject).listen(suggested, "127.0.0.1", resolve));
    await new Promise<void>((r) => probe.close(() => r()));
  });

  it("a port this user may not take, and an address that is not this machine's: what to set instead", async () => {
    expect(await listenFailureText({ host: "127.0.0.1", port: 80 }, "EACCES", "listen EACCES: permission denied 127.0.0.1:80")).toBe(
      "this user may not listen on port 80 (ports below 1024 need privileges); set PORT to 1024 or above",
    );
    expect(await listenFailureText({ host: "10.254.254.254", port: 3000 }, "EADDRNOTAVAIL", "listen EADDRNOTAVAIL")).toBe(
      "HOSTNAME=10.254.254.254 is not an address of this machine; set HOSTNAME to one of its addresses (127.0.0.1: this machine only)",
    );
    expect(await listenFailureText({ host: "127.0.0.1", port: 3000 }, null, "something else")).toBe("cannot listen on 127.0.0.1:3000: something else");
  });

  it("listenProblem: null for a port that is free (and leaves it free), the same line as a failed listen for one in use", async () => {
    const free = net.createServer();
    await new Promise<void>((r) => free.listen(0, "127.0.0.1", r));
    const freePort = (free.address() as AddressInfo).port;
    await new Promise<void>((r) => free.close(() => r()));
    expect(await listenProblem({ host: "127.0.0.1", port: freePort })).toBeNull();
    const again = net.createServer();
    await new Promise<void>((resolve, reject) => again.once("error", reject).listen(freePort, "127.0.0.1", resolve));
    await new Promise<void>((r) => again.close(() => r()));

    const taken = await listenProblem({ host: "127.0.0.1", port });
    expect([taken?.name, taken?.code, taken?.listen]).toEqual(["ListenError", "EADDRINUSE", { host: "127.0.0.1", port }]);
    expect(taken!.message).toMatch(new RegExp(`^port ${port} is in use \\(by pid ${process.pid}, `));
  });
});
