#!/usr/bin/env node
// Test stand-in (not llama-server): answers 503 (loading), logs a fatal
// error and exits with code 3 before it is ever ready.
import { standIn } from "./stand-in-common.mjs";

const s = standIn("stand-in-exits-while-loading");
await s.serve(() => 503);
s.log("loading model");
setTimeout(() => {
  s.log("error: failed to load model: tensor data is not within file bounds");
  process.exit(3);
}, 150);
