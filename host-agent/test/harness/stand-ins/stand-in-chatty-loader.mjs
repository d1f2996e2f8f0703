#!/usr/bin/env node
// Test stand-in (not llama-server): "loads" for 1.2 s while writing a log
// line every 2 ms and answering /health with 503. Then it answers one more
// probe with 503 and, right after it, turns ready and says so the way
// llama-server does ("model loaded", then "listening on"): a checker that
// only probes on its timer (250 ms apart by then) sees it ready a timer
// interval later, one that reads the log sees it at once. Every /health
// request is logged with its answer and the time since start, so a test can
// count the probes and time the last one.
import { standIn } from "./stand-in-common.mjs";

const LOAD_MS = 1200;
const s = standIn("stand-in-chatty-loader");
const t0 = Date.now();
const since = () => `+${Date.now() - t0} ms`;
let ready = false;
let loaded = false;
let n = 0;
const turnReady = () => {
  ready = true;
  s.log(`llama_server: model loaded (${since()})`);
  s.log(`llama_server: listening on http://${s.host}:${s.port}`);
};
await s.serve(() => {
  n += 1;
  const code = ready ? 200 : 503;
  s.log(`health request ${n}: ${code} (${since()})`);
  // Ready just after a probe was answered "loading": the next timed probe is a whole interval away.
  if (loaded && !ready) setImmediate(turnReady);
  return code;
});
let i = 0;
const chatter = setInterval(() => s.log(`load_tensors: tensor ${++i} done`), 2);
setTimeout(() => {
  clearInterval(chatter);
  loaded = true;
}, LOAD_MS);
