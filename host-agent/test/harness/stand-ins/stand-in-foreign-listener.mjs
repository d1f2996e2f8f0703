#!/usr/bin/env node
// Test stand-in (not llama-server, and not started by the agent): a foreign
// process that listens on a port and answers 200 to every path, /health and
// /props included (with another model's path). Prints "listening" when bound.
import http from "node:http";

const port = Number(process.argv[2]);
http
  .createServer((req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(req.url === "/props" ? '{"model_path":"/somewhere/else.gguf"}' : '{"status":"ok"}');
  })
  .listen(port, "127.0.0.1", () => console.log("listening"));
