// Shared by the scripted fault stand-ins (NOT a real llama-server): parses
// the flags llama-server gets, answers --version/--help like the real build
// (so the agent picks the modern flags), and serves /health.
import http from "node:http";

const HELP = `usage: llama-server [options]
-m,    --model FNAME                    model path
--host HOST                             ip address to listen
--port PORT                             port to listen
-fa,   --flash-attn [on|off|auto]       set Flash Attention use
-lm,   --load-mode MODE                 model loading mode
`;

export function standIn(name) {
  const argv = process.argv.slice(2);
  if (argv.includes("--version")) {
    process.stderr.write(`version: 0 (0000000)\nbuilt by ${name} (a test stand-in, not llama-server)\n`);
    process.exit(0);
  }
  if (argv.includes("--help")) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const flag = (f) => {
    const i = argv.indexOf(f);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const port = Number(flag("--port"));
  const host = flag("--host") ?? "127.0.0.1";
  const log = (msg) => process.stdout.write(`[${name}] ${msg}\n`);
  /** Serves /health with whatever status `health()` returns at that moment. */
  const serve = (health) =>
    new Promise((resolve) => {
      const srv = http.createServer((req, res) => {
        const code = health();
        res.writeHead(code, { "content-type": "application/json" });
        res.end(code === 200 ? '{"status":"ok"}' : '{"error":{"code":503,"message":"Loading model"}}');
      });
      srv.listen(port, host, () => resolve(srv));
    });
  log(`pid ${process.pid} pgid-leader args: ${argv.join(" ")}`);
  return { port, host, log, serve, argv };
}
