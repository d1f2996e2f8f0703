/**
 * The GGUF reader on files whose headers claim far more than they hold, and
 * on one that really holds a big header.
 *
 *   npx tsx bench/gguf-reader.ts
 *
 * Baseline (issue 14, the reader before it was bounded by the file's real
 * bytes): the sparse 240 MB file declaring 30 million empty strings took 86 s
 * in a discovery call (56 s reading it alone on the 2-core test machine) and
 * was then accepted. Target: refused in milliseconds; a header of 240 MB that
 * is really on disk is read at memory speed (seconds, not minutes).
 */
import { mkdtemp, open, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { writeSparseStringArray } from "../host-agent/src/gguf/hostile-files.ts";
import { readGguf } from "../host-agent/src/gguf/reader.ts";
import { ms } from "./lib.ts";

const dir = await mkdtemp(path.join(os.tmpdir(), "synapse-bench-gguf-"));
try {
  const sparse = path.join(dir, "sparse.gguf");
  await writeSparseStringArray(sparse, 30_000_000);
  const dense = path.join(dir, "dense.gguf");
  const size = await writeSparseStringArray(dense, 30_000_000);
  // Fill the holes with real zeros so every byte is on disk.
  const fh = await open(dense, "r+");
  const zeros = Buffer.alloc(1 << 20);
  for (let at = 4096; at < size; at += zeros.length) await fh.write(zeros, 0, Math.min(zeros.length, size - at), at);
  await fh.close();

  for (const [name, file, baseline] of [["sparse 240 MB, 4 KB on disk", sparse, "baseline 86 s (discovery), accepted"], ["240 MB header on disk", dense, "baseline ~56 s"]] as const) {
    const t = performance.now();
    const outcome = await readGguf(file, { maxArrayItems: 0 }).then(() => "read", (e: Error) => `refused: ${e.message.slice(e.message.indexOf(": ") + 2, 120)}…`);
    console.log(`${name}: ${ms(performance.now() - t)} (${baseline}) — ${outcome}`);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
