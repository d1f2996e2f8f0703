/**
 * Spawning llama-server from a small helper process instead of from the
 * caller's own process.
 *
 * Why: on Linux, Node spawns with fork(), whose cost grows with the parent's
 * memory. Inside the control plane (Next, Prisma's query compiler: ~200 MB)
 * one spawn blocks the event loop ~12 ms against ~3 ms from a bare Node
 * process, and a start-all of 16 servers pays that 16 times in a row
 * (bench/control-plane.ts). The helper is a plain Node process with nothing
 * loaded; it spawns each server detached (its own process group, output to
 * its log file), reports the pid, reaps it and reports its exit.
 *
 * The helper exits when its parent goes away; servers it started keep
 * running (they are detached) and the next agent re-adopts them. If the
 * helper itself dies, the supervisor watches its servers by pid like
 * adopted ones.
 *
 * The helper's program is passed with `node -e`, so nothing needs to be
 * found on disk (the app runs from a bundle).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { AGENT_DEFAULTS } from "../env.ts";

export interface LaunchRequest {
  file: string;
  args: string[];
  env: Record<string, string>;
  /** Output of the server is appended here. */
  logPath: string;
}

export interface ExitInfo {
  code: number | null;
  signal: string | null;
  /** The helper died first: the exit cannot be reported; watch the pid instead. */
  lost?: boolean;
}

export interface Launched {
  pid: number;
  /** Resolves with the exit as the helper saw it. */
  exited: Promise<ExitInfo>;
}

/** The helper: one JSON message per request over Node's IPC channel. */
const HELPER_SOURCE = `
const { spawn } = require("node:child_process");
const fs = require("node:fs");
process.on("disconnect", () => process.exit(0));
process.on("message", (msg) => {
  if (!msg || msg.type !== "spawn") return;
  let fd;
  try {
    fd = fs.openSync(msg.logPath, "a");
    const child = spawn(msg.file, msg.args, { detached: true, stdio: ["ignore", fd, fd], env: msg.env });
    child.once("error", (err) => process.send({ type: "spawned", id: msg.id, error: err.message }));
    if (child.pid !== undefined) {
      process.send({ type: "spawned", id: msg.id, pid: child.pid });
      child.once("exit", (code, signal) => process.send({ type: "exit", pid: child.pid, code, signal }));
    }
  } catch (err) {
    process.send({ type: "spawned", id: msg.id, error: err && err.message ? err.message : String(err) });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
});
`;

type HelperMessage =
  | { type: "spawned"; id: number; pid?: number; error?: string }
  | { type: "exit"; pid: number; code: number | null; signal: string | null };


export class Launcher {
  private helper: ChildProcess | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (launched: Launched) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  private readonly running = new Map<number, (e: ExitInfo) => void>();
  private closed = false;

  private ensureHelper(): ChildProcess {
    if (this.helper && this.helper.connected) return this.helper;
    const helper = spawn(process.execPath, ["-e", HELPER_SOURCE], { stdio: ["ignore", "ignore", "inherit", "ipc"], env: { PATH: process.env.PATH ?? "" } as unknown as NodeJS.ProcessEnv });
    helper.on("message", (raw) => this.onMessage(raw as HelperMessage));
    helper.once("exit", () => this.onHelperGone(helper));
    helper.once("error", () => this.onHelperGone(helper));
    // Never keep the caller alive on its own account.
    helper.unref();
    (helper.channel as unknown as { unref?: () => void } | undefined)?.unref?.();
    this.helper = helper;
    return helper;
  }

  private onMessage(msg: HelperMessage): void {
    if (msg.type === "spawned") {
      const w = this.waiting.get(msg.id);
      if (!w) return;
      this.waiting.delete(msg.id);
      clearTimeout(w.timer);
      if (msg.pid === undefined) return w.reject(new Error(msg.error ?? "spawn failed"));
      // Registered before anyone awaits: the exit may arrive in the same batch of messages.
      const pid = msg.pid;
      const exited = new Promise<ExitInfo>((resolve) => this.running.set(pid, resolve));
      w.resolve({ pid, exited });
    } else if (msg.type === "exit") {
      const done = this.running.get(msg.pid);
      this.running.delete(msg.pid);
      done?.({ code: msg.code, signal: msg.signal });
    }
  }

  private onHelperGone(helper: ChildProcess): void {
    if (this.helper !== helper) return;
    this.helper = null;
    for (const [id, w] of this.waiting) {
      clearTimeout(w.timer);
      w.reject(new Error("the spawn helper exited"));
      this.waiting.delete(id);
    }
    // Its servers live on (detached); their exits can no longer be reported from here.
    for (const [pid, done] of this.running) {
      this.running.delete(pid);
      done({ code: null, signal: null, lost: true });
    }
  }

  async launch(req: LaunchRequest): Promise<Launched> {
    if (this.closed) throw new Error("the launcher is closed");
    const helper = this.ensureHelper();
    const id = this.nextId++;
    const deadline = AGENT_DEFAULTS.spawnHelperTimeoutMs;
    return new Promise<Launched>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`the spawn helper did not answer within ${deadline} ms`));
      }, deadline);
      this.waiting.set(id, { resolve, reject, timer });
      helper.send({ type: "spawn", id, ...req }, (err) => {
        if (!err) return;
        this.waiting.delete(id);
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** Ends the helper; servers keep running. */
  close(): void {
    this.closed = true;
    const helper = this.helper;
    this.helper = null;
    if (helper?.connected) helper.disconnect();
    for (const w of this.waiting.values()) clearTimeout(w.timer);
    this.waiting.clear();
    this.running.clear();
  }
}
