#!/usr/bin/env node
// Test stand-in (not llama-server): serves /health 200 once a daemon has
// escaped with its listening socket between two looks: an intermediate
// process forks the daemon (setsid, environment cleared, so nothing links it
// to the server) and exits at once. No process-table look can tie the daemon
// to the server; a stop must say that the port is still held, and by whom.
import { spawn } from "node:child_process";
import { standIn } from "./stand-in-common.mjs";

const s = standIn("stand-in-escapes");
let ready = false;
const srv = await s.serve(() => (ready ? 200 : 503));
const intermediate = spawn(
  process.execPath,
  ["-e", `const d = require("node:child_process").spawn(process.execPath, ["-e", "console.log('escaped daemon pid ' + process.pid); setInterval(() => {}, 1000)"], { detached: true, env: {}, stdio: ["ignore", "inherit", "inherit", 3] }); d.unref(); process.exit(0);`],
  { stdio: ["ignore", "inherit", "inherit", srv._handle.fd] },
);
await new Promise((resolve) => intermediate.once("exit", resolve));
await new Promise((resolve) => setTimeout(resolve, 200)); // the daemon is up and orphaned
ready = true;
s.log("ready");
