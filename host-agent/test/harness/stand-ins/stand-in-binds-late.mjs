#!/usr/bin/env node
// Test stand-in (not llama-server): "loads" for 1.5 s without listening, then
// binds its port; when the port is taken it exits 1 as llama-server does
// ("couldn't bind HTTP server socket"). A foreign process that takes the port
// meanwhile must not make it look ready.
import { standIn } from "./stand-in-common.mjs";

const s = standIn("stand-in-binds-late");
s.log("loading model (not listening yet)");
await new Promise((resolve) => setTimeout(resolve, 1500));
const http = await import("node:http");
const srv = http.createServer((q, r) => {
  r.writeHead(200);
  r.end('{"status":"ok"}');
});
srv.once("error", (err) => {
  s.log(`couldn't bind HTTP server socket, hostname: ${s.host}, port: ${s.port}: ${err.code}`);
  process.exit(1);
});
srv.listen(s.port, s.host, () => s.log("listening"));
