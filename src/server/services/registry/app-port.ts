/**
 * Models registered on the app's own port. The registry refuses the app's
 * port to a new or edited model, but the app can be started on a port a
 * model already has (PORT=3413 npm start, following a suggestion, or an
 * edited .env): the model's next start then finds the app there. The app
 * says so as it starts (runtime.ts), naming each model and what to do.
 */
import type { DbOrTx } from "./tx";
import { freePort } from "./models";

export interface AppPortClash {
  modelId: string;
  /** The model's registry name. */
  model: string;
  host: string;
  /** The app's port, which the model is registered on. */
  port: number;
  /** A port free in the registry on the model's host (above the app's), to give the model; null when none is. */
  suggestion: number | null;
  /** One line: what is wrong and what to do. */
  message: string;
}

/**
 * The models on this machine's hosts (link kind "local": their servers listen where the app does) whose port
 * is `appPort`, by name. One query (and one per clash for a suggestion).
 */
export async function appPortClashes(db: DbOrTx, appPort: number): Promise<AppPortClash[]> {
  const rows = await db.model.findMany({ where: { port: appPort, host: { linkKind: "local" } }, select: { id: true, name: true, hostId: true, host: { select: { name: true } } }, orderBy: { name: "asc" } });
  const clashes: AppPortClash[] = [];
  for (const r of rows) {
    const suggestion = await freePort(db, r.hostId, { appPort }, { from: appPort + 1 });
    const fix = suggestion !== null ? `give ${r.name} another port (e.g. ${suggestion}, free in the registry) on its page` : `give ${r.name} another port on its page`;
    clashes.push({
      modelId: r.id,
      model: r.name,
      host: r.host.name,
      port: appPort,
      suggestion,
      message: `the app listens on port ${appPort}, which model ${r.name} (host ${r.host.name}) is registered on: its server cannot start while the app holds the port; ${fix}, or set PORT to another port and start the app again`,
    });
  }
  return clashes;
}
