#!/usr/bin/env node
// Test stand-in (not llama-server): forks a helper child (same process group,
// as a server spawning a helper would) that ignores SIGTERM, logs the child's
// pid, and becomes ready. The leader exits on SIGTERM; stopping must still
// reap the child (SIGKILL to the group after the grace).
import { spawn } from "node:child_process";
import { standIn } from "./stand-in-common.mjs";

const s = standIn("stand-in-forks-child");
const child = spawn(process.execPath, ["-e", "process.on('SIGTERM',()=>{});console.log('armed');setInterval(()=>{},1000)"], { stdio: ["ignore", "pipe", "ignore"] });
// Ready only once the child has its SIGTERM handler, so the test really exercises the SIGKILL path.
await new Promise((resolve) => child.stdout.once("data", resolve));
child.stdout.destroy();
s.log(`forked child pid ${child.pid} (ignores SIGTERM)`);
await s.serve(() => 200);
s.log("ready");
