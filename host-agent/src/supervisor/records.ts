/**
 * One JSON record per managed server in `<stateDir>/servers/<id>.json`:
 * what a later agent process needs to find, trust and adopt the server.
 * Written atomically (temp file + rename) so an agent crash mid-write leaves
 * the old record or the new one, never half of one. No fsync: records only
 * matter while their processes live, and a power loss ends those too (a
 * torn record after a reboot is skipped as unreadable).
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { serverSpecSchema } from "../protocol.ts";
import { errorMessage } from "../shared/error-text.ts";

export const serverRecordSchema = z.object({
  version: z.literal(1),
  id: z.string(),
  pid: z.number().int().positive(),
  pgid: z.number().int().positive(),
  /** Exact start-time identity from the OS (see process-table.ts); guards against pid reuse. */
  startToken: z.string(),
  startedAt: z.string(),
  port: z.number().int(),
  bindAddress: z.string(),
  binary: z.string(),
  argv: z.array(z.string()),
  logPath: z.string(),
  specHash: z.string(),
  spec: serverSpecSchema,
  readyAt: z.string().nullable(),
  agentPid: z.number().int(),
  /**
   * Written by the agent that stops the server, before it signals: another
   * agent watching the same server (the app's, while someone runs
   * stop-metal-servers on the host) then reports the exit as a stop, not a
   * crash. `by`: that agent's pid; `agent`: its instance id (two agents may
   * share a process in tests and embeddings).
   */
  stopRequest: z.object({ by: z.number().int(), agent: z.string(), at: z.string() }).nullable().optional(),
  /**
   * The value of SYNAPSE_SERVER_RUN in the server's environment (process-tree.ts): an agent that adopts the
   * server finds what it started by it. Absent from records written before it existed.
   */
  runMarker: z.string().optional(),
});
export type ServerRecord = z.infer<typeof serverRecordSchema>;

/**
 * Writes a file atomically (temp file + rename). Synchronous inside: the
 * state folder is local, and the three calls take tens of microseconds where
 * the async path costs a threadpool round trip each (a record is written for
 * every server a start-all spawns, while those servers load). Returns a
 * promise so callers stay free to go async again.
 */
export async function writeFileAtomic(file: string, data: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    writeFileSync(tmp, data, { mode: 0o600 });
  } catch (err) {
    // The folder is made once (at the agent's start, or here when it went missing), not on every write.
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(tmp, data, { mode: 0o600 });
  }
  try {
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * A folder of one JSON file per server under the state folder,
 * `<stateDir>/<folder>/<id>.json`, each written whole (writeFileAtomic):
 * the records, the host stops and the stop notes are kept so.
 */
export class JsonFileDir {
  readonly dir: string;
  constructor(stateDir: string, folder: string) {
    this.dir = path.join(stateDir, folder);
  }
  protected file(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }
  /** Writes `value` as the file of `id`, replacing it; `{version: 1, ...value}` unless the value has its own version. */
  protected writeJson(id: string, value: object): Promise<void> {
    return writeFileAtomic(this.file(id), `${JSON.stringify({ version: 1, ...value }, null, 2)}\n`);
  }
  /** Removes the file of `id` (none: nothing to do). Synchronous: one unlink. */
  protected removeFile(id: string): void {
    rmSync(this.file(id), { force: true });
  }
}

export class RecordStore extends JsonFileDir {
  constructor(stateDir: string) {
    super(stateDir, "servers");
  }
  async write(rec: ServerRecord): Promise<void> {
    await this.writeJson(rec.id, rec);
  }
  /** One record: "missing" when there is none, null when it cannot be read. */
  async read(id: string): Promise<ServerRecord | "missing" | null> {
    return this.readNow(id);
  }
  /**
   * The same, read synchronously (a small local file): at the moment a watched server's exit is seen,
   * before another agent that stopped it can remove the record (it waits for the process group to
   * empty, which the exit itself makes happen).
   */
  readNow(id: string): ServerRecord | "missing" | null {
    let text: string;
    try {
      text = readFileSync(this.file(id), "utf8");
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : null;
    }
    try {
      const r = serverRecordSchema.safeParse(JSON.parse(text));
      return r.success ? r.data : null;
    } catch {
      return null;
    }
  }
  async remove(id: string): Promise<void> {
    this.removeFile(id);
  }
  /** Every readable record; unreadable ones are reported, not fatal, so one bad file cannot block adoption. */
  async list(): Promise<{ records: ServerRecord[]; problems: { file: string; error: string }[] }> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return { records: [], problems: [] };
    }
    const records: ServerRecord[] = [];
    const problems: { file: string; error: string }[] = [];
    for (const name of names.filter((n) => n.endsWith(".json")).sort()) {
      const file = path.join(this.dir, name);
      try {
        const r = serverRecordSchema.safeParse(JSON.parse(await readFile(file, "utf8")));
        if (r.success && `${r.data.id}.json` === name) records.push(r.data);
        else problems.push({ file, error: r.success ? "id does not match the file name" : r.error.message });
      } catch (err) {
        problems.push({ file, error: errorMessage(err) });
      }
    }
    return { records, problems };
  }
}
