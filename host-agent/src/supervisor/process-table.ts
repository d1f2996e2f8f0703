/**
 * What the OS says about a process: alive or not, its process group, and its
 * start time. The start time is what makes a pid safe to signal: a pid that
 * was reused by another program has a different start time than our record.
 *
 * Linux reads /proc; macOS has no /proc, so it asks `ps` (via execFile, never
 * a shell). Both give the same shapes.
 */
import { execFile } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { readFile, readdir } from "node:fs/promises";

/** What tells one process from another: its pid, its group, and its start time. */
export interface ProcessIdentity {
  pid: number;
  pgid: number;
  /** Zombies have exited but are not yet reaped: they count as gone. */
  zombie: boolean;
  /** Opaque, exact identity of the start time, compared for pid-reuse safety. */
  startToken: string;
}

/** A process's identity and its start time for people (one process asked for, or a group's members). */
export interface ProcessInfo extends ProcessIdentity {
  /** The start time as an ISO string, for people. */
  startedAt: string;
}

/**
 * A row of a process table: a process's identity and its parent. No
 * `startedAt`: the table's readers (Descendants, environmentHas) compare
 * start tokens and never show a time, so a Date and an ISO string per
 * process per scan were made for nobody.
 */
export interface TableEntry extends ProcessIdentity {
  ppid: number;
}

const isLinux = process.platform === "linux";

function execFileText(file: string, args: string[], timeoutMs = 5000): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 8 * 1024 * 1024, encoding: "utf8" }, (err, stdout) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : null) : 0;
      resolve({ code, stdout: stdout ?? "" });
    });
  });
}

// ---- Linux ---------------------------------------------------------------

// procfs files are generated from kernel memory and never wait on a disk, so
// they are read synchronously: the async path costs a threadpool round trip
// that took 2-7 ms per read under load, on the hot path of every start/stop.
let bootTimeMs: number | null = null;
function linuxBootTimeMs(): number {
  if (bootTimeMs === null) {
    const m = /^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"));
    if (!m?.[1]) throw new Error("no btime line in /proc/stat");
    bootTimeMs = Number(m[1]) * 1000;
  }
  return bootTimeMs;
}
// USER_HZ, the unit of /proc/<pid>/stat starttime, is 100 on every Linux ABI
// Node supports; asking `getconf CLK_TCK` would cost a process spawn.
const CLOCK_TICKS_PER_SECOND = 100;

/** Fields of /proc/<pid>/stat after the `(comm)` field, which may itself hold spaces and parentheses. */
function parseLinuxStat(_pid: number, text: string): { state: string; ppid: number; pgid: number; startTicks: string } | null {
  const close = text.lastIndexOf(")");
  if (close < 0) return null;
  const f = text.slice(close + 2).split(" ");
  const state = f[0];
  const ppid = Number(f[1]);
  const pgid = Number(f[2]);
  const startTicks = f[19];
  if (!state || !Number.isInteger(pgid) || !Number.isInteger(ppid) || !startTicks) return null;
  return { state, ppid, pgid, startTicks };
}

/** /proc/PID/stat's text; null when the process exited (or never was). */
function readStat(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
}

/** One process's table row from /proc/PID/stat; null when it exited while we looked or the line is not a stat line. */
function linuxTableEntry(pid: number): TableEntry | null {
  const text = readStat(pid);
  return text === null ? null : linuxEntryFromStat(pid, text);
}

function linuxEntryFromStat(pid: number, text: string): TableEntry | null {
  const s = parseLinuxStat(pid, text);
  if (!s) return null;
  return { pid, ppid: s.ppid, pgid: s.pgid, zombie: s.state === "Z" || s.state === "X", startToken: `linux:${s.startTicks}` };
}

/** The start time of a `linux:<ticks>` token as an ISO string: boot time (/proc/stat btime) plus the ticks (USER_HZ). */
function linuxStartedAt(startToken: string): string {
  const ticks = Number(startToken.slice("linux:".length));
  return new Date(linuxBootTimeMs() + (ticks * 1000) / CLOCK_TICKS_PER_SECOND).toISOString();
}

function withStartedAt(e: TableEntry): ProcessInfo {
  return { pid: e.pid, pgid: e.pgid, zombie: e.zombie, startToken: e.startToken, startedAt: linuxStartedAt(e.startToken) };
}

/** One process's identity and start time from /proc/PID/stat; null when it exited while we looked. */
function linuxProcessInfo(pid: number): ProcessInfo | null {
  const e = linuxTableEntry(pid);
  return e === null ? null : withStartedAt(e);
}

/** Resolves in the event loop's check phase: what was waiting (a request, a chunk to forward) runs first. */
function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The table read in slices of `sliceEntries` processes, yielding to the event
 * loop between slices: the same reads, but a timer's scan no longer stalls
 * everything else in the process (the app's gateway and fleet share it with
 * a local agent) for the whole read: 15 ms for 150 processes on a loaded
 * 2-core machine, once a second while any server runs.
 */
async function linuxProcessTableSliced(sliceEntries: number): Promise<TableEntry[]> {
  const out: TableEntry[] = [];
  let read = 0;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    if (read > 0 && read % sliceEntries === 0) await yieldToLoop();
    read += 1;
    const info = linuxTableEntry(Number(name));
    if (info) out.push(info);
  }
  return out;
}

/**
 * Every process's entry, read synchronously (procfs answers from kernel
 * memory; ~1 ms for a few hundred processes). Used by a stop's look, and by
 * the descendant scan's timer only where a tree cannot be read on its own
 * (see linuxTreeTable).
 */
function linuxProcessTable(): TableEntry[] {
  const out: TableEntry[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const info = linuxTableEntry(Number(name));
    if (info) out.push(info);
  }
  return out;
}

/**
 * The procfs files a tree read opens (proc(5)), one method each, so a test
 * can count the reads or play a kernel without the children files.
 */
export interface ProcReader {
  /** /proc/[pid]/stat as text; null when the process is gone. */
  stat(pid: number): string | null;
  /** The thread ids in /proc/[pid]/task (the main thread's tid is the pid); null when the process is gone. */
  tasks(pid: number): number[] | null;
  /**
   * /proc/[pid]/task/[tid]/children as text: the pids of the children that
   * thread forked, separated by spaces. Null when it cannot be read: the
   * thread is gone, or the kernel has no such file (it came with Linux 3.5
   * and only exists with CONFIG_PROC_CHILDREN).
   */
  children(pid: number, tid: number): string | null;
}

/** The real /proc. */
export const procfs: ProcReader = {
  stat: readStat,
  tasks(pid) {
    try {
      return readdirSync(`/proc/${pid}/task`).map(Number);
    } catch {
      return null;
    }
  },
  children(pid, tid) {
    try {
      return readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8");
    } catch {
      return null;
    }
  },
};

/**
 * Whether this kernel has /proc/[pid]/task/[tid]/children (Linux 3.5 and
 * later, built with CONFIG_PROC_CHILDREN), asked of this process's main
 * thread, which exists while we ask. False off Linux.
 */
export function childrenFilesReadable(reader: ProcReader = procfs): boolean {
  return isLinux && reader.children(process.pid, process.pid) !== null;
}

/**
 * The table rows of some process trees only, read top down on Linux: for
 * each root and each process found under it, its /proc/[pid]/stat (identity:
 * start time, parent, group, state) and its children from every thread's
 * /proc/[pid]/task/[tid]/children (any thread may fork). A few files per
 * process of the trees, instead of a stat per process on the machine.
 *
 * `roots`: pids to read whatever their parent is now (a server's leader and
 * the descendants it already knows, some of them orphaned since). With a
 * `startToken`, a root whose pid now names another process is returned (so
 * the caller sees the change) but its children are not read. Zombies' are
 * not read either (a process's children move to a reaper when it exits).
 *
 * Each pid is read at most once, so the reads are bounded by the number of
 * processes. Not seen here, unlike in the whole table: a process orphaned
 * before any read saw it, even one still in the server's group (a child
 * that forked and exited between two reads; proc(5) also warns the children
 * file is exact only while the children are stopped). A stop reads the whole
 * table, and signals the group, for those. Needs the children files: see
 * childrenFilesReadable.
 */
export function linuxTreeTable(roots: readonly { pid: number; startToken: string | null }[], reader: ProcReader = procfs): TableEntry[] {
  const out: TableEntry[] = [];
  const queued = new Set<number>();
  const queue: { pid: number; startToken: string | null }[] = [];
  const enqueue = (pid: number, startToken: string | null) => {
    if (queued.has(pid)) return;
    queued.add(pid);
    queue.push({ pid, startToken });
  };
  for (const r of roots) enqueue(r.pid, r.startToken);
  for (let i = 0; i < queue.length; i++) {
    const { pid, startToken } = queue[i]!;
    const text = reader.stat(pid);
    const entry = text === null ? null : linuxEntryFromStat(pid, text);
    if (!entry) continue;
    out.push(entry);
    if (entry.zombie || (startToken !== null && entry.startToken !== startToken)) continue;
    for (const tid of reader.tasks(pid) ?? []) {
      for (const word of (reader.children(pid, tid) ?? "").split(" ")) {
        const child = Number(word);
        if (word !== "" && Number.isInteger(child) && child > 0) enqueue(child, null);
      }
    }
  }
  return out;
}


async function linuxGroupMembers(pgid: number): Promise<ProcessInfo[]> {
  const entries = await readdir("/proc");
  const out: ProcessInfo[] = [];
  await Promise.all(
    entries.map(async (name) => {
      if (!/^\d+$/.test(name)) return;
      let text: string;
      try {
        text = await readFile(`/proc/${name}/stat`, "utf8");
      } catch {
        return; // exited while we looked
      }
      const entry = linuxEntryFromStat(Number(name), text);
      if (entry && entry.pgid === pgid) out.push(withStartedAt(entry));
    }),
  );
  return out;
}

// ---- macOS (and other Unixes with BSD ps) ---------------------------------

/** `ps -o lstart=` prints e.g. "Wed Nov 25 22:12:41 2026": second resolution, local time. */
function lstartToIso(lstart: string): string {
  const d = new Date(lstart.replace(/\s+/g, " ").trim());
  return Number.isNaN(d.getTime()) ? lstart : d.toISOString();
}

/**
 * The `ps` lookups asked for in the same turn of the event loop go out as one
 * `ps -p a,b,c`: a start-all of 16 spawns 16 servers back to back and asks
 * for each one's identity right after, which was 16 `ps` processes competing
 * with the loading servers.
 */
let psBatch: Map<number, ((info: ProcessInfo | null) => void)[]> | null = null;

/** A process's identity from BSD-style `ps` (macOS; procps understands the same options). */
export function psProcessInfo(pid: number): Promise<ProcessInfo | null> {
  return new Promise((resolve) => {
    if (!psBatch) {
      const batch = new Map<number, ((info: ProcessInfo | null) => void)[]>();
      psBatch = batch;
      setImmediate(() => {
        psBatch = null;
        void psLookup([...batch.keys()]).then((found) => {
          for (const [p, waiters] of batch) for (const w of waiters) w(found.get(p) ?? null);
        });
      });
    }
    const waiters = psBatch.get(pid) ?? [];
    waiters.push(resolve);
    psBatch.set(pid, waiters);
  });
}

async function psLookup(pids: number[]): Promise<Map<number, ProcessInfo>> {
  // Exit status 1 when some pid is gone: the lines of the others still count.
  const r = await execFileText("ps", ["-o", "pid=,pgid=,stat=,lstart=", "-p", pids.join(",")]);
  const found = new Map<number, ProcessInfo>();
  for (const line of r.stdout.split("\n")) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.+)$/.exec(line);
    if (!m?.[1] || !m[2] || !m[3] || !m[4]) continue;
    const lstart = m[4].replace(/\s+/g, " ").trim();
    const pid = Number(m[1]);
    found.set(pid, { pid, pgid: Number(m[2]), zombie: m[3].startsWith("Z"), startToken: `ps:${lstart}`, startedAt: lstartToIso(lstart) });
  }
  return found;
}

async function psGroupMembers(pgid: number): Promise<ProcessInfo[]> {
  const r = await execFileText("ps", ["-A", "-o", "pid=,pgid=,stat="]);
  const pids: number[] = [];
  for (const line of r.stdout.split("\n")) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\S+)/.exec(line);
    if (m?.[1] && m[2] && m[3] && Number(m[2]) === pgid && !m[3].startsWith("Z")) pids.push(Number(m[1]));
  }
  const infos = await Promise.all(pids.map(psProcessInfo));
  return infos.filter((i): i is ProcessInfo => i !== null);
}

/** The whole table from one `ps` (BSD and procps both know these columns). */
async function psProcessTable(): Promise<TableEntry[]> {
  const r = await execFileText("ps", ["-A", "-o", "pid=,ppid=,pgid=,stat=,lstart="]);
  const out: TableEntry[] = [];
  for (const line of r.stdout.split("\n")) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(.+)$/.exec(line);
    if (!m?.[1] || !m[2] || !m[3] || !m[4] || !m[5]) continue;
    const lstart = m[5].replace(/\s+/g, " ").trim();
    out.push({ pid: Number(m[1]), ppid: Number(m[2]), pgid: Number(m[3]), zombie: m[4].startsWith("Z"), startToken: `ps:${lstart}` });
  }
  return out;
}

// ---- Portable entry points -------------------------------------------------

let lastTable: { at: number; table: Promise<TableEntry[]> } | null = null;

/**
 * Every process on the machine with its parent (zombies included, marked).
 * `maxAgeMs`: a table read that long ago or less is good enough (a stop-all
 * of 16 servers reads it once, not 16 times). `background`: a look nobody
 * waits on (the descendant scan's timer): on Linux the reads yield to the
 * event loop every `sliceEntries` processes (default 24, about a
 * millisecond), instead of holding it for the whole table.
 */
export function processTable(opts: { maxAgeMs?: number; background?: boolean; sliceEntries?: number } = {}): Promise<TableEntry[]> {
  const now = performance.now();
  if (opts.maxAgeMs !== undefined && lastTable && now - lastTable.at <= opts.maxAgeMs) return lastTable.table;
  const table = isLinux ? (opts.background ? linuxProcessTableSliced(Math.max(1, opts.sliceEntries ?? 24)) : Promise.resolve(linuxProcessTable())) : psProcessTable();
  lastTable = { at: now, table };
  return table;
}

/** Environments already read, per table read: several servers' stops look for their markers in one table. */
const environs = new WeakMap<readonly TableEntry[], Map<number, Buffer | null>>();

function readEnviron(pid: number): Buffer | null {
  try {
    return readFileSync(`/proc/${pid}/environ`);
  } catch {
    return null;
  }
}

/**
 * Whether a process's environment holds `NAME=value` (Linux: /proc/PID/environ,
 * readable for our own user's processes). False where it cannot be read, and
 * always false on other systems (macOS shows no other process's environment
 * without `ps -E`, which is not exact). With `table`, each environment is
 * read once for every look made with that table.
 */
export function environmentHas(pid: number, entry: string, table?: readonly TableEntry[]): boolean {
  if (!isLinux) return false;
  let env: Buffer | null | undefined;
  if (table) {
    let cache = environs.get(table);
    if (!cache) environs.set(table, (cache = new Map()));
    env = cache.get(pid);
    if (env === undefined) cache.set(pid, (env = readEnviron(pid)));
  } else {
    env = readEnviron(pid);
  }
  if (!env) return false;
  const needle = Buffer.from(`${entry}\0`);
  return env.subarray(0, needle.length).equals(needle) || env.includes(Buffer.concat([Buffer.from([0]), needle]));
}

export async function processInfo(pid: number): Promise<ProcessInfo | null> {
  return isLinux ? linuxProcessInfo(pid) : psProcessInfo(pid);
}

/**
 * Whether a process with this pid exists and is ours to signal (kill(pid, 0):
 * a syscall, no scan). EPERM: it exists but belongs to another user, so the
 * pid was reused (our servers run as us). A zombie exists until reaped.
 */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether the group still has a process (kill(-pgid, 0)). EPERM: it has one
 * we may not signal, which still counts. Zombies count until reaped.
 */
export function groupHasMembers(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Live (non-zombie) processes whose process group is `pgid`. A cheap
 * kill(-pgid, 0) answers "none" without scanning when the group is gone.
 */
export async function groupMembers(pgid: number): Promise<ProcessInfo[]> {
  if (!groupHasMembers(pgid)) return [];
  const all = isLinux ? await linuxGroupMembers(pgid) : await psGroupMembers(pgid);
  return all.filter((p) => !p.zombie);
}

/** argv[0] of `pid` (/proc/PID/cmdline), or its file name, when it begins with `comm`; null otherwise or when not readable. */
async function nameFromArgv0(pid: number, comm: string): Promise<string | null> {
  let argv0: string;
  try {
    argv0 = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0")[0]!.trim();
  } catch {
    return null;
  }
  const base = argv0.slice(argv0.lastIndexOf("/") + 1);
  const name = [argv0, base].find((n) => n.startsWith(comm));
  if (name === undefined) return null;
  return name.length > NAME_MAX_CHARS ? `${name.slice(0, NAME_MAX_CHARS - 1)}…` : name;
}

/** True when `pid` runs (not a zombie) and is the very process that `startToken` recorded. */
export async function isSameLiveProcess(pid: number, startToken: string): Promise<boolean> {
  const info = await processInfo(pid);
  return info !== null && !info.zombie && info.startToken === startToken;
}

/** Linux keeps a process's name (comm) to 15 characters (TASK_COMM_LEN 16, with its NUL): a name this long may be cut. */
const COMM_MAX_CHARS = 15;
/** A name taken from argv[0] is cut to this many characters. */
const NAME_MAX_CHARS = 80;

/**
 * A process's name as its holder's messages show it ("port 8081 is held by pid 4242 (python3)"), or null when
 * the process is gone or not visible. On Linux the kernel's name (/proc/PID/comm), and when that is 15
 * characters (the kernel's limit: "next-server (v1" of Next's title "next-server (v16.4.6)") the whole name
 * from argv[0], itself or its file name, when it begins with the kernel's ("next-server (v16.4.6)",
 * "synapse-holder-python3" of /tmp/x/synapse-holder-python3), at most NAME_MAX_CHARS; else the kernel's name
 * marked as cut ("kworker/u16:3-e…"). Elsewhere ps's comm.
 */
export async function commandName(pid: number): Promise<string | null> {
  if (isLinux) {
    let comm: string;
    try {
      comm = (await readFile(`/proc/${pid}/comm`, "utf8")).replace(/\n$/, "");
    } catch {
      return null;
    }
    if (comm.trim() === "") return null;
    if (comm.length < COMM_MAX_CHARS) return comm.trim();
    return (await nameFromArgv0(pid, comm)) ?? `${comm}…`;
  }
  const r = await execFileText("ps", ["-o", "comm=", "-p", String(pid)]);
  return r.code === 0 ? r.stdout.trim() || null : null;
}
