/**
 * Issue 14 item 8: the agent's log banner quotes the argv as a shell reads
 * it. A model whose file name holds a command substitution: the banner's
 * command, read back by a real shell, is the argv the server got, and the
 * substitution never runs.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { agentOptions, AgentPool, eventRecorder, specFor, testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { freePort } from "../../test/harness/ports.ts";
import { standIns } from "../../test/harness/stand-ins/index.ts";
import { tinyModel } from "../../test/harness/tiny-model.ts";

let dirs: TestDirs;
const pool = new AgentPool();
beforeAll(async () => {
  dirs = await testDirs();
});
afterEach(() => pool.stopEverything());
afterAll(() => dirs.cleanup());

describe("log banner", () => {
  it("a copied banner runs the same argv and expands nothing in a file name", async () => {
    const witness = path.join(dirs.root, "substitution-ran");
    // Relative: a file name holds no '/'. The shell below runs in dirs.root, where the witness would appear.
    const model = await tinyModel(dirs.modelRoot, "it's a $(touch substitution-ran) model.gguf");
    const agent = pool.make(agentOptions(dirs, standIns.forksChild));
    const s = await agent.call("start", { spec: specFor("banner", model, await freePort(), { alias: "two words", stopGraceMs: 300 }) });
    const banner = (await readFile(s.logPath!, "utf8")).split("\n").find((l) => l.startsWith("=== synapse host-agent: starting banner"))!;
    const command = /^=== synapse host-agent: starting banner at \S+: (.*) ===$/.exec(banner)?.[1];
    expect(command).toBeDefined();
    const words = execFileSync("bash", ["-c", `set -- ${command}; printf '%s\\0' "$@"`], { encoding: "utf8", cwd: dirs.root }).split("\0").slice(0, -1);
    expect(existsSync(witness)).toBe(false);
    // The stand-in logs the argv it got: the banner's words are exactly the binary and that argv.
    const argvLine = (await readFile(s.logPath!, "utf8")).split("\n").find((l) => l.includes("pgid-leader args: "))!;
    expect(words[0]).toBe(standIns.forksChild);
    expect(words.slice(1).join(" ")).toBe(argvLine.slice(argvLine.indexOf("args: ") + 6));
    expect(words).toContain(model);
    expect(words).toContain("two words");
  });

  it("goes out live, first, for each run: someone watching the log sees where a run begins and its command line", async () => {
    const model = await tinyModel(dirs.modelRoot, "live-banner.gguf");
    const agent = pool.make(agentOptions(dirs, standIns.forksChild));
    const rec = eventRecorder(agent);
    const liveLines = () => rec.events.flatMap((e) => (e.kind === "log" && e.id === "live" ? [e.line] : []));
    const isBanner = (l: string) => l.startsWith("=== synapse host-agent: starting live at ");
    const ports: number[] = [];
    let logPath = "";
    for (let run = 0; run < 2; run++) {
      ports.push(await freePort());
      logPath = (await agent.call("start", { spec: specFor("live", model, ports[run]!, { stopGraceMs: 300 }) })).logPath!;
      await agent.call("stop", { id: "live" });
    }
    await agent.call("logs", { id: "live", lines: 10 }); // the follower has caught up: every line went out
    const banners = (await readFile(logPath, "utf8")).split("\n").filter(isBanner);
    expect(banners).toHaveLength(2);
    const live = liveLines();
    // Each run's banner, as the file has it, was sent live, before the line in which that run's server prints its argv.
    expect(live.filter(isBanner)).toEqual(banners);
    for (const [run, port] of ports.entries()) {
      const argvLine = live.findIndex((l) => !isBanner(l) && l.includes("pgid-leader args: ") && l.includes(`--port ${port}`));
      expect(argvLine).toBeGreaterThan(live.indexOf(banners[run]!));
    }
    expect(live[0]).toBe(banners[0]);
  });
});
