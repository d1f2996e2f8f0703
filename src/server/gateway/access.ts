/**
 * Who may call the gateway, checked before anything else (and before the
 * body is read):
 *
 * - the app's Host allowlist and Origin / Sec-Fetch-Site checks
 *   (server/http/guard.ts `checkSite`), on loopback too: a web page the user
 *   visits must not be able to start models by posting to 127.0.0.1;
 * - POST needs `Content-Type: application/json` (a form or text/plain body
 *   is what a page can send cross-site without a preflight);
 * - when SYNAPSE_API_TOKEN is set: `Authorization: Bearer <token>` or the
 *   dashboard's session cookie.
 */
import type { IncomingHttpHeaders } from "node:http";
import { checkSite, hasValidCredentials, isJsonType, type GuardSettings } from "~/server/http/guard";
import { GatewayError } from "./openai-error";

function toHeaders(src: IncomingHttpHeaders): Headers {
  const h = new Headers();
  for (const [k, v] of Object.entries(src)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) h.append(k, x);
    else h.set(k, v);
  }
  return h;
}

/** null when the request may go on; else the error to answer. */
export function checkAccess(method: string, path: string, rawHeaders: IncomingHttpHeaders, settings: GuardSettings): GatewayError | null {
  const headers = toHeaders(rawHeaders);
  const site = checkSite({ method, pathname: path, headers }, settings);
  if (!site.ok) return new GatewayError(site.status, "permission_error", site.code.toLowerCase(), site.message);
  if (settings.apiToken && !hasValidCredentials(headers, settings.apiToken)) {
    return new GatewayError(401, "authentication_error", "invalid_api_key", "missing or wrong API key: send Authorization: Bearer <SYNAPSE_API_TOKEN>");
  }
  if (method === "POST" && !isJsonType(headers.get("content-type"))) {
    return new GatewayError(415, "invalid_request_error", "unsupported_media_type", `the gateway takes JSON bodies: send Content-Type: application/json (got ${JSON.stringify(headers.get("content-type") ?? "none")})`);
  }
  return null;
}
