/**
 * The worker's channels to ssh hosts' model servers (fleet-host.ts's channel
 * socket, remote-fleet.ts openChannel): a channel the host could not connect
 * (nothing listens on the port: the model's server has just crashed) reaches
 * the worker's forward as a refused connection, which waits for the crash's
 * notice (raw-upstream.ts), as a direct gateway's does.
 */
import { AgentError } from "synapse-host-agent/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { connectRefused } from "./connect-refused";
import { createFleetHost, type BridgeParts, type FleetHost } from "./fleet-host";
import { openChannel } from "./remote-fleet";

let host: FleetHost | null = null;
afterEach(() => {
  host?.close();
  host = null;
});

/** The bridge over an adapter whose channels fail with `err` (the ssh link's error), nothing else of the app. */
function hostFailing(err: Error): FleetHost {
  const parts = {
    adapter: { connect: () => Promise.reject(err) },
    onFleetEvent: () => () => undefined,
    keys: { forget: () => undefined },
    metrics: null,
  } as unknown as BridgeParts;
  return createFleetHost({ parts: async () => parts, post: () => undefined });
}

describe("a channel asked through the worker's channel socket", () => {
  it("refused by its host (nothing listens on the port): a refused connection, with the host's words", async () => {
    host = hostFailing(new AgentError({ code: "UNAVAILABLE", message: "nothing listens on 127.0.0.1:8081 on host 'mac' (Connection refused)", data: { port: 8081, refused: "connect" } }));
    const err = await openChannel(host.channelSocket, "h1", 8081, 2000).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toBe("nothing listens on 127.0.0.1:8081 on host 'mac' (Connection refused)");
    expect(connectRefused(err)).toBe(true);
  });

  it("failed otherwise (the host unreachable): the error, not a refused connection", async () => {
    host = hostFailing(new AgentError({ code: "UNAVAILABLE", message: "host 'mac' is unreachable (link reconnecting): timed out" }));
    const err = await openChannel(host.channelSocket, "h1", 8081, 2000).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toBe("host 'mac' is unreachable (link reconnecting): timed out");
    expect(connectRefused(err)).toBe(false);
  });
});
