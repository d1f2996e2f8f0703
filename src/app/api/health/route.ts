/** GET /api/health: the app's version and whether the database answers. 200 when healthy, 503 when not. */
import { getRuntime } from "~/server/runtime";
import { APP_VERSION } from "~/server/version";
import { errorMessage } from "synapse-host-agent/error-text";

export const dynamic = "force-dynamic";

export async function GET() {
  const started = performance.now();
  let database: { ok: true; latencyMs: number } | { ok: false; error: string };
  try {
    await (await getRuntime()).db.$queryRawUnsafe("SELECT 1");
    database = { ok: true, latencyMs: Math.round((performance.now() - started) * 100) / 100 };
  } catch (err) {
    database = { ok: false, error: errorMessage(err) };
  }
  const ok = database.ok;
  return Response.json({ status: ok ? "ok" : "degraded", version: APP_VERSION, database }, { status: ok ? 200 : 503, headers: { "cache-control": "no-store" } });
}
