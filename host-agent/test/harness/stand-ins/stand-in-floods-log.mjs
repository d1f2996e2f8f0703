#!/usr/bin/env node
// Test stand-in (not llama-server): ready at once, then writes about 20 MB/s
// of log lines (100-byte lines, 200 KB every 10 ms) for FLOOD_SECONDS
// (its --alias, default 2), then "flood done".
import { standIn } from "./stand-in-common.mjs";

const s = standIn("stand-in-floods-log");
await s.serve(() => 200);
s.log("ready");
const alias = s.argv[s.argv.indexOf("--alias") + 1];
const seconds = Number(alias) > 0 ? Number(alias) : 2;
const line = (i) => `flood ${String(i).padStart(9, "0")} ${"x".repeat(83)}\n`;
let i = 0;
const until = Date.now() + seconds * 1000;
while (Date.now() < until) {
  const tick = Date.now();
  let chunk = "";
  for (let k = 0; k < 2000; k++) chunk += line(i++);
  process.stdout.write(chunk);
  await new Promise((r) => setTimeout(r, Math.max(0, 10 - (Date.now() - tick))));
}
s.log(`flood done after ${i} lines`);
