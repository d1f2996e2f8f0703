/** GET /api/models/servers/status — every model with what its host last reported (state, pid, uptime, errors). */
import { jsonRoute } from "~/server/http/rest";
import { getRuntime } from "~/server/runtime";

export const dynamic = "force-dynamic";

export const GET = jsonRoute(async () => {
  const runtime = await getRuntime();
  const servers = await runtime.fleet.status();
  const counts: Record<string, number> = {};
  for (const s of servers) counts[s.state] = (counts[s.state] ?? 0) + 1;
  return { body: { servers, counts } };
});
