/**
 * What the gateway's benchmarks share to run their baselines: nginx as a
 * plain reverse proxy in front of a llama-server, waiting with a deadline,
 * and stopping a child with one.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "../host-agent/test/harness/ports.ts";

/** Debian's nginx (`apt-get install -y nginx`), or one built to the usual places; undefined when there is none. */
export const NGINX = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"].find((p) => existsSync(p));

/** Polls `probe` every `everyMs` until it is true; throws "timed out waiting for <what>" after `timeoutMs`. */
export async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** SIGTERM, then SIGKILL after `deadlineMs`; resolves when the child has exited. */
export async function stopChild(c: ChildProcess, deadlineMs: number): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once("exit", r));
  c.kill("SIGTERM");
  const timer = setTimeout(() => c.kill("SIGKILL"), deadlineMs);
  await exited;
  clearTimeout(timer);
}

/**
 * nginx (one worker) as a plain reverse proxy with a keep-alive upstream to
 * the llama-server on `upstreamPort`, its files in `dir`; null when nginx is
 * not installed. Resolves once its /health answers (10 s deadline).
 */
export async function startNginx(dir: string, upstreamPort: number): Promise<{ port: number; child: ChildProcess } | null> {
  if (!NGINX) return null;
  const port = await freePort();
  const conf = path.join(dir, "nginx.conf");
  await mkdir(path.join(dir, "nginx-tmp"), { recursive: true });
  const t = path.join(dir, "nginx-tmp");
  await writeFile(
    conf,
    `worker_processes 1;
daemon off;
pid ${path.join(dir, "nginx.pid")};
error_log ${path.join(dir, "nginx-error.log")} warn;
${process.getuid?.() === 0 ? "user root root;" : ""}
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${t}/body; proxy_temp_path ${t}/proxy; fastcgi_temp_path ${t}/fcgi; uwsgi_temp_path ${t}/uwsgi; scgi_temp_path ${t}/scgi;
  # keepalive_timeout below llama-server's own 5 s, so nginx never reuses a connection the server closed.
  upstream llama { server 127.0.0.1:${upstreamPort}; keepalive 32; keepalive_timeout 4s; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://llama;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # llama-server closes a connection after a streamed answer: a POST that meets such a cached
      # connection is sent again on a new one (nginx does not resend a POST by default: 502).
      proxy_next_upstream error timeout non_idempotent;
      proxy_buffering off;
      proxy_request_buffering off;
    }
  }
}
`,
  );
  const child = spawn(NGINX, ["-c", conf, "-p", dir], { stdio: ["ignore", "ignore", "inherit"] });
  await until("nginx", async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok, 10_000, 50);
  return { port, child };
}
