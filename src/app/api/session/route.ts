/**
 * POST /api/session {"token": "..."}: exchanges the API token for an
 * http-only, same-site session cookie, so the dashboard can call the API when
 * SYNAPSE_API_TOKEN is set. DELETE ends the session.
 */
import { z } from "zod";
import { env } from "~/server/env";
import { SESSION_COOKIE, secretsEqual, sessionValue } from "~/server/http/guard";

export const dynamic = "force-dynamic";

const bodySchema = z.object({ token: z.string().min(1, "token is required").max(1024) });

export async function POST(req: Request) {
  const expected = env().SYNAPSE_API_TOKEN;
  if (!expected) return Response.json({ ok: true, required: false });
  const parsed = bodySchema.safeParse(await req.json().catch(() => null));
  if (!parsed.success) return Response.json({ error: { code: "BAD_REQUEST", message: "send {\"token\": \"<SYNAPSE_API_TOKEN>\"}" } }, { status: 400 });
  if (!secretsEqual(parsed.data.token, expected)) return Response.json({ error: { code: "UNAUTHORIZED", message: "wrong token" } }, { status: 401 });
  const secure = new URL(req.url).protocol === "https:" ? "; Secure" : "";
  return Response.json(
    { ok: true, required: true },
    { headers: { "set-cookie": `${SESSION_COOKIE}=${sessionValue(expected)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=2592000${secure}` } },
  );
}

export async function DELETE() {
  return Response.json({ ok: true }, { headers: { "set-cookie": `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0` } });
}
