#!/usr/bin/env node
// Test stand-in (not llama-server): "loads" for 1.2 s while writing a log
// line every 2 ms and answering /health with 503, then turns ready and says
// so the way llama-server does ("model loaded", then "listening on"). Every
// /health request it gets is logged with its answer, so a test can count
// how often the agent probed, and when.
import { standIn } from "./stand-in-common.mjs";

const LOAD_MS = 1200;
const s = standIn("stand-in-chatty-loader");
let ready = false;
let n = 0;
await s.serve(() => {
  n += 1;
  const code = ready ? 200 : 503;
  s.log(`health request ${n}: ${code}`);
  return code;
});
const t0 = Date.now();
let i = 0;
const chatter = setInterval(() => s.log(`load_tensors: tensor ${++i} done`), 2);
setTimeout(() => {
  clearInterval(chatter);
  ready = true;
  s.log("llama_server: model loaded");
  s.log(`llama_server: listening on http://${s.host}:${s.port} (after ${Date.now() - t0} ms)`);
}, LOAD_MS);
