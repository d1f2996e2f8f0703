/**
 * Stops made on the host itself (`stop-metal-servers`, the seed's stop
 * script), remembered in `<stateDir>/host-stops.json` until the server is
 * started again. The app's agent reports them, so an app that was away when
 * its user stopped servers on the Mac leaves them stopped instead of starting
 * them again. Written atomically; an unreadable file counts as empty (the
 * worst case is the old behaviour: the app starts what it wants running).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "./records.ts";

const hostStopSchema = z.object({ at: z.string(), by: z.string().max(200) });
const fileSchema = z.object({ version: z.literal(1), stops: z.record(z.string(), hostStopSchema) });

export type HostStop = z.infer<typeof hostStopSchema>;

export class HostStops {
  private readonly file: string;
  /** Read-modify-write in order: two changes never lose each other. */
  private io: Promise<unknown> = Promise.resolve();

  constructor(stateDir: string) {
    this.file = path.join(stateDir, "host-stops.json");
  }

  async read(): Promise<Map<string, HostStop>> {
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch {
      return new Map();
    }
    try {
      const parsed = fileSchema.safeParse(JSON.parse(text));
      return parsed.success ? new Map(Object.entries(parsed.data.stops)) : new Map();
    } catch {
      return new Map();
    }
  }

  /** Records that these servers were stopped on the host, now, by `by`. */
  mark(ids: readonly string[], by: string): Promise<void> {
    const at = new Date().toISOString();
    return this.change((stops) => {
      for (const id of ids) stops.set(id, { at, by });
    });
  }

  /** Forgets the stops of these servers (they were started again). */
  clear(ids: readonly string[]): Promise<void> {
    return this.change((stops) => {
      for (const id of ids) stops.delete(id);
    });
  }

  private change(fn: (stops: Map<string, HostStop>) => void): Promise<void> {
    const run = this.io.then(async () => {
      const stops = await this.read();
      const before = JSON.stringify([...stops]);
      fn(stops);
      if (JSON.stringify([...stops]) === before) return;
      await writeFileAtomic(this.file, `${JSON.stringify({ version: 1, stops: Object.fromEntries(stops) }, null, 2)}\n`);
    });
    this.io = run.catch(() => undefined);
    return run;
  }
}
