/**
 * POST /api/models/servers/start-all — the seed's endpoint. Starts every
 * enabled model on every host and waits until each is ready or failed,
 * returning one result per model; `?wait=false` returns at once (202).
 * Status 200 when all are ready, 207 when some failed.
 */
import { z } from "zod";
import { jsonRoute, parseQuery } from "~/server/http/rest";
import { getRuntime } from "~/server/runtime";

export const dynamic = "force-dynamic";

const query = z
  .object({ wait: z.enum(["true", "false", "1", "0"], { error: "must be true or false" }).default("true") })
  .strict()
  .transform((q) => ({ wait: q.wait === "true" || q.wait === "1" }));

export const POST = jsonRoute(async (req) => {
  const { wait } = parseQuery(req, query);
  const runtime = await getRuntime();
  const results = await runtime.fleet.startAll({ wait });
  const failed = results.filter((r) => r.state !== "ready" && r.state !== "starting");
  const ok = failed.length === 0;
  return {
    status: !wait ? 202 : ok ? 200 : 207,
    body: { ok, started: results.length, failed: failed.length, results },
  };
});
