/**
 * Runs before every route (Next 16 "proxy", Node.js runtime): Host and
 * Origin checks, the API token, JSON-only mutations. The rules live in
 * server/http/guard.ts; this file only adapts them to Next.
 */
import { NextResponse, type NextRequest } from "next/server";
import { env } from "~/server/env";
import { checkRequest, type GuardSettings } from "~/server/http/guard";

let settings: GuardSettings | undefined;
function guardSettings(): GuardSettings {
  if (!settings) {
    const e = env();
    settings = { allowedHosts: e.SYNAPSE_ALLOWED_HOSTS, listenHost: e.HOSTNAME, apiToken: e.SYNAPSE_API_TOKEN };
  }
  return settings;
}

export function proxy(request: NextRequest) {
  const verdict = checkRequest({ method: request.method, pathname: request.nextUrl.pathname, headers: request.headers }, guardSettings());
  if (verdict.ok) return NextResponse.next();
  const isApi = request.nextUrl.pathname.startsWith("/api/");
  if (!isApi && verdict.status === 401) return NextResponse.redirect(new URL("/login", request.url));
  return NextResponse.json({ error: { code: verdict.code, message: verdict.message } }, { status: verdict.status });
}

export const config = {
  // Everything but Next's own static assets.
  matcher: ["/((?!_next/static|_next/image|favicon.ico).*)"],
};
