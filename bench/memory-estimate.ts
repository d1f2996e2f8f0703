/**
 * Estimating every model of a 200-model registry from their files: the agent's read of each model's
 * shape (every part of a split set) and the app's estimate from it, per model, with the files' pages
 * out of the page cache (cold) and in it (warm). Also the estimate alone from a stored shape, which is
 * what host budgets and start plans run.
 *
 *   npx tsx bench/memory-estimate.ts [--models 200] [--dir DIR (reuse a registry written before)]
 *
 * The registry: sparse GGUF files (bench-only: headers on disk, weights holes) of llama, qwen2, gemma2,
 * gemma3 and mistral shapes, 8 to 48 layers, vocabularies of 32k to 152k tokens (a 152k vocabulary's
 * tokenizer lists make a 3 MiB header), f16 / q8_0 / q4_0 weights; one model in five a split set of 2
 * to 4 parts.
 *
 * Cold: every file's pages dropped from the page cache first (`dd iflag=nocache count=0`, which asks the
 * kernel to drop that file's cached pages, and leaves other files alone: the machine is shared), then a
 * fresh process reads them all (so its code is cold too). Warm: the same process reads them all again.
 * `fincore` confirms the pages were dropped (its count of cached pages for the registry is printed).
 *
 * Target: under 5 ms per model warm.
 *
 * Figures on the shared 2-core test machine (load average 9 to 19 while measuring, so wall times carry
 * waiting for a core; CPU per model is the steadier figure):
 *   baseline (the reader's string walk before this bench: a bigint and checked skip per token)
 *     cold 33.8 ms median / 16.8 ms CPU; warm 11.9 ms median / 10.2 ms CPU per model
 *   now (one synchronous loop over the bytes in memory; tensor entries decoded without a promise each)
 *     cold 13.5-21.4 ms median / 10.9-13.6 ms CPU; warm 4.9-8.5 ms median / 6.9-8.8 ms CPU per model
 *   estimate from a stored shape, no file (what plans run): 0.17-0.29 ms median per model
 * Almost all of a warm read is walking the tokenizer's list (a 152k-token list costs about 5 ms CPU here,
 * 32 ns a token); GGUF gives no way to skip it without reading each token's length.
 * The page cache the registry holds after the passes (about 1.3-2 GB) is the kernel's read-ahead into
 * the sparse files' holes past their headers, not bytes the reader asked for.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, existsSync, fsyncSync, openSync, readdirSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { readModelShape } from "../host-agent/src/discovery/model-shape.ts";
import { writeShapedModel, writeShapedModelSplit, type ShapedArchitecture, type ShapedModelOptions } from "../host-agent/src/gguf/shaped-model.ts";
import { parseSplitName } from "../host-agent/src/shared/split-name.ts";
import { estimateMemory, type EstimateSettings } from "../src/server/services/memory/estimate.ts";
import { argValue, median, ms, percentile } from "./lib.ts";

const SETTINGS: EstimateSettings = { ctxSize: 8192, parallel: 2, batchSize: 2048, ubatchSize: 512, flashAttn: "on", loadMode: "mmap", gpuLayers: 99, cacheTypeK: "q8_0", cacheTypeV: "q8_0", cacheRamMiB: null };

/** A deterministic mix of shapes: model i of n. */
function shapeFor(i: number): { opts: ShapedModelOptions; parts: number } {
  const archs: ShapedArchitecture[] = ["llama", "qwen2", "gemma2", "gemma3", "llama"];
  const architecture = archs[i % archs.length]!;
  const widths = [1024, 2048, 3072, 4096];
  const embedding = widths[Math.floor(i / 5) % widths.length]!;
  const layers = [8, 16, 24, 32, 48][Math.floor(i / 3) % 5]!;
  const vocab = [32000, 65536, 128256, 151936][Math.floor(i / 7) % 4]!;
  const headSize = architecture.startsWith("gemma") ? 256 : 128;
  const heads = Math.max(1, embedding / headSize);
  return {
    opts: {
      architecture,
      name: `bench-${i}`,
      embedding,
      layers,
      heads,
      kvHeads: Math.max(1, heads / 4),
      headSize,
      feedForward: embedding * 3,
      vocab,
      contextLength: 32768,
      ...(architecture.startsWith("gemma") ? { slidingWindow: 4096 } : {}),
      weightType: ["f16", "q8_0", "q4_0"][i % 3]!,
    },
    parts: i % 5 === 4 ? 2 + (i % 3) : 1,
  };
}

async function writeRegistry(dir: string, n: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < n; i++) {
    const { opts, parts } = shapeFor(i);
    const base = path.join(dir, `model-${String(i).padStart(3, "0")}`);
    if (parts > 1) await writeShapedModelSplit(base, parts, opts);
    else await writeShapedModel(`${base}.gguf`, opts);
  }
}

/** The registry's models: single files and the first part of each split set. */
function modelFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".gguf"))
    .map((f) => path.join(dir, f))
    .filter((f) => {
      const s = parseSplitName(f);
      return !s || s.index === 1;
    })
    .sort();
}

interface Pass {
  /** Wall-clock milliseconds per model. */
  times: number[];
  /** CPU milliseconds (user + system) of the whole pass: on a loaded machine wall time includes waiting for a core. */
  cpuMs: number;
}

/** Every model once: read its shape from its file(s) and estimate it. */
async function pass(files: string[]): Promise<Pass> {
  const times: number[] = [];
  const cpu = process.cpuUsage();
  for (const f of files) {
    const t = performance.now();
    const shape = await readModelShape(f);
    const e = estimateMemory(shape, SETTINGS);
    if ("unavailable" in e) throw new Error(`${f}: ${e.unavailable}`);
    times.push(performance.now() - t);
  }
  const used = process.cpuUsage(cpu);
  return { times, cpuMs: (used.user + used.system) / 1000 };
}

function summary(label: string, p: Pass): string {
  const total = p.times.reduce((a, b) => a + b, 0);
  const n = p.times.length;
  return `${label}: wall ${ms(total / n, 2)} mean, ${ms(median(p.times), 2)} median, ${ms(percentile(p.times, 95), 2)} p95 per model (${ms(total, 0)} for ${n}); CPU ${ms(p.cpuMs / n, 2)} per model`;
}

async function measure(dir: string): Promise<void> {
  const files = modelFiles(dir);
  const cold = await pass(files);
  const warm = await pass(files);
  const warm2 = await pass(files);
  // The estimate alone, from shapes already stored (what plans do).
  const shapes = await Promise.all(files.map((f) => readModelShape(f)));
  const stored = shapes.map((s) => JSON.stringify(s));
  const only: number[] = [];
  let onlyCpu = 0;
  for (let round = 0; round < 3; round++) {
    const cpu = process.cpuUsage();
    for (const text of stored) {
      const t = performance.now();
      estimateMemory(JSON.parse(text), SETTINGS);
      only.push(performance.now() - t);
    }
    const used = process.cpuUsage(cpu);
    if (round > 0) onlyCpu += (used.user + used.system) / 1000;
  }
  const split = files.filter((f) => parseSplitName(f)).length;
  console.log(`${files.length} models (${split} split sets)`);
  console.log(summary("cold (fresh process, pages dropped)", cold));
  console.log(summary("warm (second pass)", warm));
  console.log(summary("warm (third pass)", warm2));
  console.log(summary("estimate from a stored shape (no file; JIT warm)", { times: only.slice(stored.length), cpuMs: onlyCpu }));
  console.log(`load average while measuring: ${os.loadavg().map((l) => l.toFixed(1)).join(" ")} on ${os.cpus().length} cores`);
}

function cachedPages(dir: string): string {
  const r = spawnSync("fincore", ["--bytes", "--noheadings", "--output", "RES", ...readdirSync(dir).map((f) => path.join(dir, f))], { encoding: "utf8" });
  if (r.status !== 0) return "unknown (fincore failed)";
  const bytes = r.stdout.trim().split("\n").reduce((s, l) => s + Number(l.trim() || 0), 0);
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

if (process.argv.includes("--measure")) {
  await measure(argValue("--measure")!);
} else {
  const n = Number(argValue("--models") ?? 200);
  const given = argValue("--dir");
  const dir = given ?? path.join(os.tmpdir(), `synapse-bench-estimate-${process.pid}`);
  try {
    if (!given || !existsSync(dir)) {
      const t = performance.now();
      await writeRegistry(dir, n);
      console.log(`wrote ${n} models in ${ms(performance.now() - t, 0)} to ${dir}`);
    }
    for (const f of readdirSync(dir)) {
      const file = path.join(dir, f);
      // Written pages must reach the disk before the kernel will drop them.
      const fd = openSync(file, "r+");
      fsyncSync(fd);
      closeSync(fd);
      execFileSync("dd", [`if=${file}`, "iflag=nocache", "count=0", "status=none"]);
    }
    console.log(`page cache held by the registry after dropping: ${cachedPages(dir)}`);
    const r = spawnSync(process.execPath, [...process.execArgv, import.meta.filename, "--measure", dir], { stdio: "inherit", timeout: 600_000 });
    if (r.status !== 0) throw new Error(`the measuring process failed (${r.status ?? r.signal})`);
    console.log(`page cache held by the registry after the passes: ${cachedPages(dir)}`);
    console.log("target: under 5 ms per model warm");
  } finally {
    if (!given) await rm(dir, { recursive: true, force: true });
  }
}
