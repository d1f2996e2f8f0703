import { describe, expect, it } from "vitest";
import { runFooter } from "../shared/run-header.ts";
import { LiveLogGate } from "./live-log-gate.ts";

function gate(perSecond: number, burst: number) {
  let now = 0;
  const sent: string[] = [];
  const g = new LiveLogGate((lines) => sent.push(...lines), { perSecond, burst, now: () => now });
  return { g, sent, advance: (ms: number) => void (now += ms) };
}

const lines = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `line ${from + i}`);

describe("LiveLogGate", () => {
  it("lets a burst through, then the sustained rate, and says how many it skipped before the next line", () => {
    const { g, sent, advance } = gate(100, 50);
    g.push(lines(80));
    expect(sent).toEqual(lines(50));
    advance(100); // 10 more tokens
    g.push(lines(20, 80));
    expect(sent.slice(50)).toEqual(["[synapse host-agent] 30 log lines skipped here (more than 100 lines/s); the log file has them", ...lines(9, 80)]);
    g.flush();
    expect(sent.at(-1)).toMatch(/^\[synapse host-agent\] 11 log lines skipped/);
  });

  it("a quiet server's lines all go out", () => {
    const { g, sent, advance } = gate(100, 50);
    for (let i = 0; i < 100; i++) {
      g.push([`l${i}`]);
      advance(20);
    }
    expect(sent).toHaveLength(100);
    g.flush();
    expect(sent).toHaveLength(100);
  });

  it("the sent count over any stretch is bounded by burst + rate × time, plus one note per send", () => {
    const { g, sent, advance } = gate(200, 1000);
    for (let ms = 0; ms < 3000; ms += 10) {
      g.push(lines(500)); // 50,000 lines/s
      advance(10);
    }
    const notes = sent.filter((l) => l.includes("skipped here")).length;
    expect(sent.length - notes).toBeLessThanOrEqual(1000 + 200 * 3);
  });
});

describe("LiveLogGate and the agent's own lines", () => {
  it("a run's last line goes out over the budget, after the note for the lines skipped before it", () => {
    const { g, sent } = gate(100, 50);
    const footer = runFooter("alpha", new Date("2026-12-01T12:00:05Z"), "stopped", "requested", "stopped on request");
    // A flood before the stop: the budget is spent when the run's last line comes.
    g.push([...lines(80), footer]);
    expect(sent).toEqual([...lines(50), "[synapse host-agent] 30 log lines skipped here (more than 100 lines/s); the log file has them", footer]);
    g.flush();
    expect(sent.at(-1)).toBe(footer);
  });
});
