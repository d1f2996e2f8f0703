/**
 * The gateway over a real fleet for integration tests: the fleet fixture
 * (migrated SQLite, local agent, real llama-server, tiny models), the fleet
 * adapter, and the gateway in front of a stand-in for Next on a loopback
 * port, as scripts/start.mjs puts it in front of Next's server. Clients are
 * the official `openai` package and plain fetch.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import type { ChatCompletionCreateParamsNonStreaming } from "openai/resources/chat/completions";
import type { Model } from "~/generated/prisma/client";
import { fleetFixture, type FleetFixture, type FleetFixtureOptions } from "~/server/services/fleet/testing/fixture";
import { createFleetAdapter, type FleetAdapter } from "../fleet-adapter";
import { createGateway, type Gateway, type GatewayOptions } from "../gateway";
import { createKeyStore } from "../key-store";
import { attachFastPath } from "../fast-path";
import type { HostReach } from "../fleet-port";
import type { GatewayMetrics } from "../metrics-port";

export const GRAMMAR = "root ::= [a-z]+";

/**
 * A short chat completion's params for `model`: one user message "hi", 8 tokens, GRAMMAR (so random weights
 * give text llama-server's parser accepts), then `extra` over them (max_tokens, ignore_eos, stream, …).
 */
export function chat(model: string, extra: Record<string, unknown> = {}): ChatCompletionCreateParamsNonStreaming {
  return { model, messages: [{ role: "user", content: "hi" }], max_tokens: 8, grammar: GRAMMAR, ...extra } as unknown as ChatCompletionCreateParamsNonStreaming;
}

export interface GatewayFixture {
  f: FleetFixture;
  adapter: FleetAdapter;
  gateway: Gateway;
  /** http://127.0.0.1:PORT */
  url: string;
  /** The official client on `${url}/v1`, no retries. */
  client: OpenAI;
  /** A tiny model with registry fields set (ctxSize, extraFlags, …). */
  addModel(name: string, fields?: Record<string, unknown>): Promise<Model>;
  dispose(): Promise<void>;
}

export async function gatewayFixture(
  options: {
    fleet?: FleetFixtureOptions;
    guard?: Partial<GatewayOptions["guard"]>;
    adapter?: { maxAgeMs?: number };
    gateway?: Pick<GatewayOptions, "idleSweepMs" | "upstream">;
    /** Node's http server reads every request (the gateway's Node path) instead of the fast path reading gateway requests first, as the app does. */
    nodePath?: boolean;
    /** The gateway's figures, made over the fleet fixture (e.g. the app's metrics). */
    metrics?: (f: FleetFixture) => GatewayMetrics;
  } = {},
): Promise<GatewayFixture> {
  const f = await fleetFixture(options.fleet);
  // The pool of the fleet as it is now (a restart makes a new one).
  const links = { openTcp: (...a: Parameters<FleetFixture["links"]["openTcp"]>) => f.links.openTcp(...a), linkDown: (...a: Parameters<FleetFixture["links"]["linkDown"]>) => f.links.linkDown(...a) };
  const adapter = createFleetAdapter({ db: f.t.db, fleet: f.fleet, events: f.events, links, ...options.adapter });
  const metrics = options.metrics?.(f) ?? null;
  // As the app's main thread answers it (front.ts bridgeParts), from the fleet as it is now.
  const hostReach: HostReach = async (hosts) => Object.fromEntries(hosts.map((h) => [h.id, f.fleet.hostUnreachable(h)]));
  const gateway = createGateway({ fleet: adapter, keys: createKeyStore(f.t.db), guard: { allowedHosts: [], listenHost: "127.0.0.1", apiToken: undefined, ...options.guard }, metrics, hostReach, ...options.gateway });
  const server = http.createServer((req, res) => {
    if (gateway.handles(req.url ?? "/")) void gateway.handle(req, res);
    else {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("next");
    }
  });
  if (!options.nodePath) attachFastPath(server, { gateway: () => gateway });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "not-needed-on-loopback", maxRetries: 0, timeout: 60_000 });
  return {
    f,
    adapter,
    gateway,
    url,
    client,
    async addModel(name, fields = {}) {
      const m = await f.addModel(name, { enabled: (fields.enabled as boolean | undefined) ?? true });
      return Object.keys(fields).length > 0 ? f.t.db.model.update({ where: { id: m.id }, data: fields }) : m;
    },
    async dispose() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      gateway.close();
      adapter.close();
      await f.dispose();
    },
  };
}

/** Headers for talking to a model's llama-server directly: its own key (the registry row's serverApiKey). */
export function serverAuth(model: { serverApiKey: string | null }): Record<string, string> {
  return model.serverApiKey ? { authorization: `Bearer ${model.serverApiKey}` } : {};
}

/** The llama-server's own /slots: true while any slot is working. */
export async function anySlotBusy(model: { port: number; serverApiKey: string | null }): Promise<boolean> {
  const r = await fetch(`http://127.0.0.1:${model.port}/slots`, { headers: serverAuth(model) });
  const slots = (await r.json()) as { is_processing: boolean }[];
  return slots.some((s) => s.is_processing);
}
