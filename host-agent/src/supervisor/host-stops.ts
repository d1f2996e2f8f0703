/**
 * Stops made on the host itself (`stop-metal-servers`, the seed's stop
 * script), remembered until the server is started again, as one file per
 * server: `<stateDir>/host-stops/<id>.json`. The app's agent reports them, so
 * an app that was away when its user stopped servers on the Mac leaves them
 * stopped instead of starting them again.
 *
 * One file each, so the processes that share the state folder never rewrite
 * each other's marks: the CLI marking one server while the app's agent
 * clears another (a shared file lost one of two changes made at once). Marks
 * are read afresh on every status, so an agent that was already running sees
 * a mark made by the CLI since, and a start clears the file whoever made it.
 * An unreadable mark counts as none (the worst case is the old behaviour: the
 * app starts what it wants running).
 */
import { existsSync } from "node:fs";
import { readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { serverIdSchema } from "../protocol.ts";
import { JsonFileDir } from "./records.ts";

const hostStopSchema = z.object({ at: z.string(), by: z.string().max(200) });
const markFileSchema = hostStopSchema.extend({ version: z.literal(1) });
/** The single file earlier versions kept (`{version: 1, stops: {id: {at, by}}}`); moved to per-server files once. */
const legacyFileSchema = z.object({ version: z.literal(1), stops: z.record(z.string(), hostStopSchema) });

export type HostStop = z.infer<typeof hostStopSchema>;

export class HostStops extends JsonFileDir {
  private readonly legacyFile: string;

  constructor(stateDir: string) {
    super(stateDir, "host-stops");
    this.legacyFile = path.join(stateDir, "host-stops.json");
  }

  /** Every server marked as stopped on the host. */
  async read(): Promise<Map<string, HostStop>> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return new Map();
    }
    const stops = new Map<string, HostStop>();
    await Promise.all(
      names.map(async (name) => {
        const id = name.endsWith(".json") ? name.slice(0, -".json".length) : null;
        if (!id || !serverIdSchema.safeParse(id).success) return; // temp files of a write in progress, strays
        try {
          const parsed = markFileSchema.safeParse(JSON.parse(await readFile(path.join(this.dir, name), "utf8")));
          if (parsed.success) stops.set(id, { at: parsed.data.at, by: parsed.data.by });
        } catch {
          // removed meanwhile, or unreadable: no mark
        }
      }),
    );
    return stops;
  }

  /** Records that these servers were stopped on the host, now, by `by`. */
  async mark(ids: readonly string[], by: string): Promise<void> {
    const at = new Date().toISOString();
    for (const id of ids) await this.write(id, { at, by });
  }

  private write(id: string, stop: HostStop): Promise<void> {
    return this.writeJson(id, stop);
  }

  /** Forgets the stop of a server (it was started again). Synchronous: one unlink, on every start. */
  clear(id: string): void {
    this.removeFile(id);
  }

  /** Moves the marks of the single file earlier versions kept into per-server files (once, at an agent's start). */
  async migrateLegacyFile(): Promise<void> {
    if (!existsSync(this.legacyFile)) return;
    let legacy: Map<string, HostStop> = new Map();
    try {
      const parsed = legacyFileSchema.safeParse(JSON.parse(await readFile(this.legacyFile, "utf8")));
      if (parsed.success) legacy = new Map(Object.entries(parsed.data.stops));
    } catch {
      // unreadable: nothing to carry over
    }
    const current = await this.read();
    for (const [id, stop] of legacy) {
      if (current.has(id) || !serverIdSchema.safeParse(id).success) continue;
      await this.write(id, stop);
    }
    await rm(this.legacyFile, { force: true });
  }
}
