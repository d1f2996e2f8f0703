#!/usr/bin/env node
// Test stand-in (not llama-server): plays what llama-server does at SIGTERM
// while a client keeps a request open (seen with gdb on the build here): it
// logs "cleaning up before exit", then waits for its HTTP threads, which
// wait for their clients, so it stays. A second SIGTERM makes it exit at
// once with code 1, as llama-server's signal handler does.
import { standIn } from "./stand-in-common.mjs";

const s = standIn("stand-in-waits-for-clients");
let terms = 0;
process.on("SIGTERM", () => {
  terms += 1;
  if (terms === 1) {
    s.log("cleaning up before exit... (a client's request is still open; waiting for it)");
    return;
  }
  process.stderr.write("Received second interrupt, terminating immediately.\n");
  process.exit(1);
});
await s.serve(() => 200);
s.log("ready");
