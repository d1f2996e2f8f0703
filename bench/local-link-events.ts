/**
 * Micro-benchmark of the local link's event forwarding: what one agent event
 * costs between the agent in this process and the link's listener (the
 * fleet's handler is left out). A stand-in agent emits llama-server's log
 * lines as events in bursts of 7 (what one short completion writes) and a
 * state event now and then; the figure is the thread's CPU time per event
 * (process.cpuUsage), which a busy machine moves far less than wall time.
 *
 *   npx tsx bench/local-link-events.ts [--rounds 40] [--events 7000] [--baseline DIR]
 *
 * `--baseline DIR`: the local link of another checkout (its
 * host-agent/src/link/local.ts, loaded into this process) as a second leg;
 * the legs alternate round by round and "this minus baseline" is the median
 * of the paired differences.
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { AgentApi, AgentEvent } from "../host-agent/src/protocol.ts";
import { createLocalLink } from "../host-agent/src/link/local.ts";
import type { HostLink } from "../host-agent/src/link/types.ts";
import { silentLinkLog } from "../host-agent/src/link/types.ts";
import { argValue, median, percentile } from "./lib.ts";

const ROUNDS = Number(argValue("--rounds") ?? 40);
const EVENTS = Number(argValue("--events") ?? 7000);
const BASELINE = argValue("--baseline");

/** Lines a llama-server writes for one short completion (their shape; the text varies by build). */
const LINES = [
  "slot launch_slot_: id  0 | task 12 | processing task",
  "slot update_slots: id  0 | task 12 | new prompt, n_ctx_slot = 256, n_keep = 0, n_prompt_tokens = 9",
  "slot update_slots: id  0 | task 12 | kv cache rm [0, end)",
  "slot update_slots: id  0 | task 12 | prompt processing progress, n_past = 9, n_tokens = 9, progress = 1.000000",
  "slot release: id  0 | task 12 | stop processing: n_past = 12, truncated = 0",
  "slot print_timing: id  0 | task 12 | prompt eval time = 0.52 ms / 9 tokens",
  "srv  log_server_r: request: POST /v1/chat/completions 127.0.0.1 200",
];

const STATUS = { id: "bench-model", state: "ready", pid: 4242, port: 8081, startedAt: new Date().toISOString(), readyAt: new Date().toISOString(), exitCode: null, signal: null, reason: null, logPath: null, specHash: null, logTail: [] };

class StandInAgent implements AgentApi {
  readonly listeners = new Set<(e: AgentEvent) => void>();
  private seq = Date.now() * 1000;
  call(): Promise<never> {
    return Promise.reject(new Error("stand-in agent: no calls"));
  }
  onEvent(listener: (e: AgentEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  /** `n` events: bursts of the 7 lines, one state event per 100 bursts. */
  emit(n: number): void {
    const at = new Date().toISOString();
    for (let i = 0; i < n; i++) {
      const e: AgentEvent =
        i % 700 === 699
          ? ({ type: "event", kind: "state", at, status: STATUS } as AgentEvent)
          : { type: "event", kind: "log", at, id: "bench-model", line: LINES[i % LINES.length]!, seq: ++this.seq };
      for (const l of this.listeners) l(e);
    }
  }
}

interface Leg {
  name: string;
  agent: StandInAgent;
  link: HostLink;
  received: number;
  perEventUs: number[];
}

async function leg(name: string, create: typeof createLocalLink): Promise<Leg> {
  const agent = new StandInAgent();
  const link = create({ name, agent, log: silentLinkLog });
  const l: Leg = { name, agent, link, received: 0, perEventUs: [] };
  link.onEvent(() => (l.received += 1));
  return l;
}

function round(l: Leg): void {
  const before = l.received;
  const t0 = process.cpuUsage();
  l.agent.emit(EVENTS);
  const t = process.cpuUsage(t0);
  if (l.received - before !== EVENTS) throw new Error(`${l.name}: ${l.received - before} of ${EVENTS} events reached the listener`);
  l.perEventUs.push((t.user + t.system) / EVENTS);
}

async function main() {
  const legs = [await leg("this", createLocalLink)];
  if (BASELINE) {
    const mod = (await import(pathToFileURL(path.resolve(BASELINE, "host-agent/src/link/local.ts")).href)) as { createLocalLink: typeof createLocalLink };
    legs.push(await leg("baseline", mod.createLocalLink));
  }
  // Warm-up: both legs' code optimized before anything is counted.
  for (const l of legs) for (let i = 0; i < 3; i++) l.agent.emit(EVENTS);
  for (let r = 0; r < ROUNDS; r++) for (const l of r % 2 ? [...legs].reverse() : legs) round(l);
  const us = (x: number) => `${x.toFixed(2)} µs`;
  console.log(`local link, CPU per agent event (${ROUNDS} rounds of ${EVENTS} events; 7 log lines a completion, a state event per 700)`);
  for (const l of legs) console.log(`  ${l.name.padEnd(9)} median ${us(median(l.perEventUs))}  p10 ${us(percentile(l.perEventUs, 10))}  p90 ${us(percentile(l.perEventUs, 90))}  (x7 per completion: ${us(7 * median(l.perEventUs))})`);
  if (legs.length === 2) {
    const d = legs[0]!.perEventUs.map((x, i) => x - legs[1]!.perEventUs[i]!);
    const ratio = legs[0]!.perEventUs.map((x, i) => x / legs[1]!.perEventUs[i]!);
    console.log(`  this minus baseline, paired: median ${us(median(d))} (IQR ${us(percentile(d, 25))} to ${us(percentile(d, 75))}); ratio median ${median(ratio).toFixed(3)}`);
  }
  for (const l of legs) await l.link.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
