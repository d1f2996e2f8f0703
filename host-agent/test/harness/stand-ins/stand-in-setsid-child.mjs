#!/usr/bin/env node
// Test stand-in (not llama-server): serves /health 200, and hands its
// listening socket to a child that calls setsid() (Node's `detached`: a new
// session and process group) and keeps it. Ending the server's group leaves
// that child holding the port; only a stop that tracks the server's
// descendants ends it.
import { spawn } from "node:child_process";
import { standIn } from "./stand-in-common.mjs";

const s = standIn("stand-in-setsid-child");
const srv = await s.serve(() => 200);
const child = spawn(process.execPath, ["-e", "console.log('setsid child holds the socket');setInterval(()=>{},1000)"], {
  detached: true,
  stdio: ["ignore", "inherit", "inherit", srv._handle.fd],
});
child.unref();
s.log(`setsid child pid ${child.pid}`);
s.log("ready");
