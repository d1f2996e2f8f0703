/**
 * POST /api/models/servers/start-all — the seed's endpoint. Starts every
 * enabled model on every host and waits until each is ready or failed,
 * returning one result per model and counts of what started and what
 * failed (start-all-body.ts); `?wait=false` returns at once (202).
 * Status 200 when all are ready, 207 when some failed or were refused (a model that does not fit in
 * its host's memory budget: `refused` counts them, each result's `error` has the numbers);
 * `?force=true` starts them anyway. Enabled on-demand models are not started (their first request
 * does); `onDemand` names them. The options may come as a JSON body instead (`{"force": true,
 * "wait": false}`); an unknown option, or one given both ways with different values, is a 400.
 */
import { z } from "zod";
import { jsonRoute, readOptions } from "~/server/http/rest";
import { startAllResponse } from "~/server/http/start-all-body";
import { getRuntime } from "~/server/runtime";

export const dynamic = "force-dynamic";

const query = z
  .object({
    wait: z.enum(["true", "false", "1", "0"], { error: "must be true or false" }).default("true"),
    force: z.enum(["true", "false", "1", "0"], { error: "must be true or false" }).default("false"),
  })
  .strict()
  .transform((q) => ({ wait: q.wait === "true" || q.wait === "1", force: q.force === "true" || q.force === "1" }));

export const POST = jsonRoute(async (req) => {
  const { wait, force } = await readOptions(req, query);
  const runtime = await getRuntime();
  const results = await runtime.fleet.startAll({ wait, force });
  // Said, so that a model start-all leaves stopped on purpose is not taken for one it forgot.
  const onDemand = await runtime.db.model.findMany({ where: { enabled: true, loadPolicy: "on-demand" }, select: { name: true }, orderBy: { name: "asc" } });
  return startAllResponse(results, wait, onDemand.map((m) => m.name));
});
