/**
 * Stop requests that outlive the server's record, one file per server:
 * `<stateDir>/stop-requests/<id>.json`, `{version: 1, pid, startToken, by,
 * agent, at}`. An agent writes one before it signals a server another agent
 * may be watching (the app's agent, while `host-agent stop-metal-servers`
 * stops it); the watcher reads it when it sees the exit, or a failed health
 * probe, and reports a stop instead of a crash or a health failure.
 *
 * Why not the record alone (it carries the same request, for agents of
 * earlier versions): the stopper removes the record once the server's
 * processes are gone, and a watcher may see the exit only after that: a
 * zombie leader, or one whose threads are still exiting, no longer counts
 * for the stopper but is not reaped yet. And a watcher that sees a crash
 * first removes the record too, so a missing record says nothing about who
 * ended the server. A note names the very process (pid and start time) and
 * counts only while fresh, so a stale one never explains a later crash; the
 * next stop of the id replaces it and a start of the id removes it, so there
 * is at most one per server id.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { JsonFileDir } from "./records.ts";

const noteSchema = z.object({
  version: z.literal(1),
  pid: z.number().int().positive(),
  /** The stopped process's start time (process-table.ts): the note never speaks for a reused pid. */
  startToken: z.string(),
  /** The stopping agent's process id. */
  by: z.number().int(),
  /** The stopping agent's instance id (two agents may share a process in tests and embeddings). */
  agent: z.string(),
  /** When the stop was asked for (ISO time). */
  at: z.string(),
});
export type StopNote = Omit<z.infer<typeof noteSchema>, "version">;

export class StopNotes extends JsonFileDir {
  constructor(stateDir: string) {
    super(stateDir, "stop-requests");
  }

  /** Records that `note.agent` is stopping server `id` (replaces an earlier note). Throws on a write error. */
  write(id: string, note: StopNote): Promise<void> {
    return this.writeJson(id, note);
  }

  /** The note for `id`; null when there is none or it cannot be read. Synchronous: read the moment an exit is seen. */
  readNow(id: string): StopNote | null {
    try {
      const parsed = noteSchema.safeParse(JSON.parse(readFileSync(this.file(id), "utf8")));
      if (!parsed.success) return null;
      const { version: _version, ...note } = parsed.data;
      return note;
    } catch {
      return null; // none, removed meanwhile, or unreadable
    }
  }

  /** Forgets the note of `id` (it is started again). */
  clear(id: string): void {
    this.removeFile(id);
  }
}
