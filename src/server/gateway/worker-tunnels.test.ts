/**
 * The worker's own ssh links (worker-tunnels.ts), with stand-in links and channels: which way a channel goes, when a
 * link is made, made anew or closed, and whether a channel made the main thread's way is kept alive. The real ssh
 * link under it is tested in remote.integration.test.ts and host-agent's model-ports.integration.test.ts.
 */
import { PassThrough, type Duplex } from "node:stream";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { HostLink, LinkState, SshLinkConfigInput, TcpTunnel } from "synapse-host-agent/link";
import type { KeptAliveWhile } from "./raw-upstream";
import { CONFIG_RECHECK_MS, createWorkerTunnels, IDLE_CLOSE_MS, OWN_CHANNEL_MAX_MS, OWN_LINK_SKIP_MS } from "./worker-tunnels";

interface StandInLink {
  config: SshLinkConfigInput;
  state: LinkState;
  openTunnels: number;
  closed: boolean;
  failNext: Error | null;
  /** openTcp answers nothing: it rejects with TIMEOUT at its deadline, as the ssh link's does. */
  hang: boolean;
  asked: number[];
  opened: number[];
}

function setup(configs: Map<string, SshLinkConfigInput | null>) {
  const links: StandInLink[] = [];
  const fallbacks: { hostId: string; port: number; timeoutMs: number }[] = [];
  const warnings: string[] = [];
  const tunnels = createWorkerTunnels({
    configFor: async (hostId) => configs.get(hostId) ?? null,
    fallback: async (hostId, port, timeoutMs) => {
      fallbacks.push({ hostId, port, timeoutMs });
      return new PassThrough();
    },
    log: { warn: (msg) => warnings.push(msg) },
    makeLink: (config) => {
      const l: StandInLink = { config, state: "connecting", openTunnels: 0, closed: false, failNext: null, hang: false, asked: [], opened: [] };
      links.push(l);
      const link = {
        get state() {
          return l.state;
        },
        get openTunnels() {
          return l.openTunnels;
        },
        async openTcp(port: number, opts?: { timeoutMs?: number }): Promise<Duplex> {
          l.asked.push(opts?.timeoutMs ?? -1);
          if (l.hang) {
            await new Promise((r) => setTimeout(r, opts?.timeoutMs ?? 5000));
            throw Object.assign(new Error(`did not open a channel within ${opts?.timeoutMs} ms`), { code: "TIMEOUT" });
          }
          if (l.failNext) {
            const e = l.failNext;
            l.failNext = null;
            throw e;
          }
          l.opened.push(port);
          return new PassThrough();
        },
        async close() {
          l.closed = true;
          l.state = "closed";
        },
      };
      return link as unknown as HostLink & TcpTunnel;
    },
  });
  return { tunnels, links, fallbacks, warnings };
}

const config = (host: string): SshLinkConfigInput => ({ name: "mac", host, port: 22, username: "me", privateKey: "KEY", hostKeyFingerprints: ["SHA256:x"] });
const settle = () => new Promise((r) => setImmediate(r));

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "Date"] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("worker tunnels", () => {
  it("the first request goes the main thread's way and makes the link; once it is connected, channels go over it, and a channel made the main thread's way is no longer kept alive", async () => {
    const { tunnels, links, fallbacks } = setup(new Map([["h1", config("10.0.0.2")]]));
    const first = (await tunnels.open("h1", 8080, 5000)) as Duplex & KeptAliveWhile;
    expect(fallbacks).toEqual([{ hostId: "h1", port: 8080, timeoutMs: 5000 }]);
    await settle();
    expect(links).toHaveLength(1);
    expect(links[0]!.config.host).toBe("10.0.0.2");
    // Connecting: still the main thread's way, and that channel may be kept meanwhile.
    expect(first.keepAlive?.()).toBe(true);
    await tunnels.open("h1", 8080, 5000);
    expect(fallbacks).toHaveLength(2);
    links[0]!.state = "connected";
    expect(first.keepAlive?.()).toBe(false);
    await tunnels.open("h1", 8081, 5000);
    expect(links[0]!.opened).toEqual([8081]);
    expect(fallbacks).toHaveLength(2);
    await tunnels.close();
    expect(links[0]!.closed).toBe(true);
  });

  it("a channel its own link fails goes the main thread's way with what is left of the deadline (its error is the fleet's)", async () => {
    const { tunnels, links, fallbacks } = setup(new Map([["h1", config("10.0.0.2")]]));
    await tunnels.open("h1", 8080, 5000);
    await settle();
    links[0]!.state = "connected";
    links[0]!.failNext = new Error("administratively prohibited");
    vi.setSystemTime(Date.now());
    await tunnels.open("h1", 9999, 4000);
    expect(fallbacks.at(-1)).toMatchObject({ hostId: "h1", port: 9999 });
    expect(fallbacks.at(-1)!.timeoutMs).toBeLessThanOrEqual(4000);
    expect(fallbacks.at(-1)!.timeoutMs).toBeGreaterThan(0);
  });

  it("a channel its own link does not open (a connection gone silent): it takes at most OWN_CHANNEL_MAX_MS, the main thread's way gets the rest, and the next requests skip the own link for OWN_LINK_SKIP_MS", async () => {
    const { tunnels, links, fallbacks } = setup(new Map([["h1", config("10.0.0.2")]]));
    await tunnels.open("h1", 8080, 5000);
    await settle();
    links[0]!.state = "connected";
    links[0]!.hang = true;
    const t0 = performance.now();
    await tunnels.open("h1", 8080, 5000);
    expect(links[0]!.asked).toEqual([OWN_CHANNEL_MAX_MS]);
    expect(performance.now() - t0).toBeLessThan(OWN_CHANNEL_MAX_MS + 1000);
    // (Date is held still here: the fallback is given the whole rest.) It was 1 ms: the own link had taken all 5 s.
    expect(fallbacks.at(-1)!.timeoutMs).toBeGreaterThanOrEqual(5000 - OWN_CHANNEL_MAX_MS);
    const skipped = (await tunnels.open("h1", 8080, 5000)) as Duplex & KeptAliveWhile;
    expect(links[0]!.asked).toHaveLength(1);
    // While the own link is skipped, a channel the main thread's way may be kept alive.
    expect(skipped.keepAlive?.()).toBe(true);
    links[0]!.hang = false;
    vi.setSystemTime(Date.now() + OWN_LINK_SKIP_MS);
    await tunnels.open("h1", 8081, 5000);
    expect(links[0]!.opened).toEqual([8081]);
    expect(skipped.keepAlive?.()).toBe(false);
  }, 10_000);

  it("no config (no ssh link connected in the main thread): no link is made, every channel goes the main thread's way", async () => {
    const { tunnels, links, fallbacks } = setup(new Map());
    for (let i = 0; i < 3; i++) await tunnels.open("h1", 8080, 5000);
    await settle();
    expect(links).toHaveLength(0);
    expect(fallbacks).toHaveLength(3);
  });

  it("a host edited (its config changed): after CONFIG_RECHECK_MS of use the link is made anew and the old one closed; the same config keeps it", async () => {
    const configs = new Map([["h1", config("10.0.0.2")]]);
    const { tunnels, links } = setup(configs);
    await tunnels.open("h1", 8080, 5000);
    await settle();
    links[0]!.state = "connected";
    vi.advanceTimersByTime(CONFIG_RECHECK_MS);
    await tunnels.open("h1", 8080, 5000);
    await settle();
    expect(links).toHaveLength(1);
    configs.set("h1", config("10.0.0.3"));
    vi.advanceTimersByTime(CONFIG_RECHECK_MS);
    await tunnels.open("h1", 8080, 5000);
    await settle();
    expect(links).toHaveLength(2);
    expect(links[0]!.closed).toBe(true);
    expect(links[1]!.config.host).toBe("10.0.0.3");
  });

  it("a link unused for IDLE_CLOSE_MS with no channel open is closed (a host removed is never asked about again); one with a channel open is kept", async () => {
    const { tunnels, links } = setup(new Map([["h1", config("10.0.0.2")], ["h2", config("10.0.0.9")]]));
    await tunnels.open("h1", 8080, 5000);
    await tunnels.open("h2", 8080, 5000);
    await settle();
    links[1]!.openTunnels = 1;
    vi.advanceTimersByTime(IDLE_CLOSE_MS + 60_000);
    expect(links[0]!.closed).toBe(true);
    expect(links[1]!.closed).toBe(false);
    // The next request makes it again.
    await tunnels.open("h1", 8080, 5000);
    await settle();
    expect(links).toHaveLength(3);
    await tunnels.close();
  });
});
