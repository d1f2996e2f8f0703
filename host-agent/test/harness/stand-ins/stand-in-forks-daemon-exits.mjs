#!/usr/bin/env node
// Test stand-in (not llama-server): forks a daemon (setsid) that listens on
// the server's port and answers /health 200, then exits at once with code 0,
// as a launcher script that backgrounds the real server would. The daemon
// keeps the environment it inherited.
import { spawn } from "node:child_process";
import { standIn } from "./stand-in-common.mjs";

const s = standIn("stand-in-forks-daemon-exits");
const daemon = spawn(process.execPath, ["-e", `require("node:http").createServer((q, r) => { r.writeHead(200); r.end('{"status":"ok"}'); }).listen(${s.port}, ${JSON.stringify(s.host)}, () => console.log("daemon listening"))`], {
  detached: true,
  stdio: ["ignore", "inherit", "inherit"],
});
daemon.unref();
s.log(`daemon pid ${daemon.pid}; exiting now`);
process.exit(0);
