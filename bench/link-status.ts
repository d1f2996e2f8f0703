/**
 * `status` through the persistent ssh link vs a new `ssh` process per call
 * (what the seed's Host API did), against a real sshd on loopback, the real
 * forced-command wrapper and the real agent, with one real llama-server
 * running so `status` has something to report.
 *
 *   npx tsx bench/link-status.ts [--calls 200]
 *
 * Target (issue 4): persistent p50 <= 5 ms and at least 20x faster than ssh per call.
 */
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { createSshLink } from "../host-agent/src/link/index.ts";
import { silentLinkLog } from "../host-agent/src/link/types.ts";
import { specFor, testDirs } from "../host-agent/test/harness/fixtures.ts";
import { freePort } from "../host-agent/test/harness/ports.ts";
import { installWrapper } from "../host-agent/test/harness/ssh-wrapper.ts";
import { sshdLinkConfig, sshExec, startSshd } from "../host-agent/test/harness/sshd.ts";
import { tinyModel } from "../host-agent/test/harness/tiny-model.ts";
import { llamaServerBin, ms, percentile } from "./lib.ts";

const callsArg = process.argv.indexOf("--calls");
const CALLS = callsArg > 0 ? Number(process.argv[callsArg + 1]) : 200;
if (!Number.isInteger(CALLS) || CALLS < 1 || CALLS > 100_000) throw new Error("--calls must be a whole number from 1 to 100000");

function summary(samples: number[]) {
  return { n: samples.length, p50: percentile(samples, 50), p95: percentile(samples, 95), min: Math.min(...samples), max: Math.max(...samples), mean: samples.reduce((a, b) => a + b, 0) / samples.length };
}

const fmt = (x: number) => ms(x, 2);

function runSsh(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile("/usr/bin/ssh", args, { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`ssh failed: ${stderr || err.message}`, { cause: err }));
      else if (!stdout.trimStart().startsWith("[")) reject(new Error(`unexpected status output: ${stdout.slice(0, 200)}`));
      else resolve();
    });
  });
}

async function main(): Promise<void> {
  const bin = llamaServerBin({ quiet: true });
  const dirs = await testDirs("synapse-bench-");
  const wrapper = await installWrapper(path.join(dirs.root, "wrapper"), {
    SYNAPSE_STATE_DIR: dirs.stateDir,
    SYNAPSE_MODEL_ROOTS: dirs.modelRoot,
    ...(bin ? { LLAMA_SERVER_BIN: bin } : {}),
    SYNAPSE_LOG_LEVEL: "warn",
  });
  const sshd = await startSshd({ forcedCommand: wrapper.path });
  const link = createSshLink(sshdLinkConfig(sshd, "bench"), { log: silentLinkLog });
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`link did not connect: ${link.state}`)), 30_000);
      const check = () => link.state === "connected" && (clearTimeout(t), resolve());
      link.onStateChange(check);
      check();
    });
    if (bin) {
      const model = await tinyModel(dirs.modelRoot, "bench.gguf");
      await link.call("start", { spec: specFor("bench", model, await freePort()) });
    }

    // Persistent link: one connection, one agent, JSON lines.
    for (let i = 0; i < 20; i++) await link.call("status", {});
    const persistent: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const t0 = performance.now();
      await link.call("status", {});
      persistent.push(performance.now() - t0);
    }

    // New ssh per call: handshake, auth, wrapper, a fresh agent process, exit.
    const knownHosts = path.join(dirs.root, "known_hosts");
    await writeFile(knownHosts, `${sshd.knownHostsLine()}\n`);
    const sshArgs = [
      "-i", sshd.clientKey.privateKeyPath,
      "-p", String(sshd.port),
      "-o", "BatchMode=yes",
      "-o", "IdentitiesOnly=yes",
      "-o", "StrictHostKeyChecking=yes",
      "-o", `UserKnownHostsFile=${knownHosts}`,
      "-o", "LogLevel=ERROR",
      `${sshd.user}@${sshd.host}`,
      "status",
    ];
    await runSsh(sshArgs);
    const perCall: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const t0 = performance.now();
      await runSsh(sshArgs);
      perCall.push(performance.now() - t0);
      if ((i + 1) % 50 === 0) process.stderr.write(`  ssh per call: ${i + 1}/${CALLS}\n`);
    }

    const a = summary(persistent);
    const b = summary(perCall);
    const rows = [
      ["", "calls", "p50", "p95", "mean", "min", "max"],
      ["persistent link", String(a.n), fmt(a.p50), fmt(a.p95), fmt(a.mean), fmt(a.min), fmt(a.max)],
      ["ssh per call", String(b.n), fmt(b.p50), fmt(b.p95), fmt(b.mean), fmt(b.min), fmt(b.max)],
    ];
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c]!)).join("  "));
    console.log(`speed-up at p50: ${(b.p50 / a.p50).toFixed(1)}x, at p95: ${(b.p95 / a.p95).toFixed(1)}x (llama-server running: ${bin ? "yes" : "no"})`);
    console.log(`target: persistent p50 <= 5 ms: ${a.p50 <= 5 ? "met" : "NOT met"}; >= 20x faster: ${b.p50 / a.p50 >= 20 ? "met" : "NOT met"}`);
  } finally {
    await link.call("stopAll", { graceMs: 2000 }).catch(() => {});
    await link.close();
    await sshExec(sshd, "stop-metal-servers", { timeoutMs: 30_000 }).catch(() => {});
    await sshd.dispose();
    await dirs.cleanup();
  }
}

await main();
