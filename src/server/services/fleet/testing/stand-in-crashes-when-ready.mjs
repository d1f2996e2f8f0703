#!/usr/bin/env node
// Test stand-in (not llama-server): becomes ready, then dies with code 1
// shortly after, every time it is started: a crash loop.
import { standIn } from "../../../../../host-agent/test/harness/stand-ins/stand-in-common.mjs";

const s = standIn("stand-in-crashes-when-ready");
await s.serve(() => 200);
s.log("ready");
setTimeout(() => {
  s.log("fatal: simulated crash after becoming ready");
  process.exit(1);
}, Number(process.env.STAND_IN_CRASH_AFTER_MS ?? 300));
