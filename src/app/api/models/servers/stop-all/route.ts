/**
 * POST /api/models/servers/stop-all — stops every managed server and returns one result per model.
 * It takes no options: a query or body other than empty / `{}` is a 400 that stops nothing. `pending`: stops
 * recorded for models whose host cannot be reached now, made once it is back (each result's `stopPending`).
 */
import { z } from "zod";
import { jsonRoute, readOptions } from "~/server/http/rest";
import { getRuntime } from "~/server/runtime";

export const dynamic = "force-dynamic";

const noOptions = z.object({}).strict();

export const POST = jsonRoute(async (req) => {
  await readOptions(req, noOptions);
  const runtime = await getRuntime();
  const results = await runtime.fleet.stopAll();
  // A stop whose host cannot be reached now is recorded and made once it is back (stopPending): not a failure.
  const pending = results.filter((r) => r.stopPending).length;
  const failed = results.filter((r) => r.state !== "stopped" && !r.stopPending);
  return { status: failed.length === 0 ? 200 : 207, body: { ok: failed.length === 0, stopped: results.length - failed.length - pending, pending, failed: failed.length, results } };
});
