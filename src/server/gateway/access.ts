/**
 * Who may call the gateway, checked before anything else (and before the
 * body is read):
 *
 * - the app's Host allowlist and Origin / Sec-Fetch-Site checks
 *   (server/http/guard.ts `checkSite`), on loopback too: a web page the user
 *   visits must not be able to start models by posting to 127.0.0.1;
 * - POST needs `Content-Type: application/json` (a form or text/plain body
 *   is what a page can send cross-site without a preflight);
 * - credentials: a gateway API key (`Authorization: Bearer sk-synapse-…`,
 *   possibly limited to some models), the admin token SYNAPSE_API_TOKEN, or
 *   the dashboard's session cookie. When SYNAPSE_API_TOKEN is set (required
 *   whenever the app is reachable beyond loopback) one of them is required;
 *   on a loopback-only app without a token, a request without them passes
 *   (clients send some key anyway; only a wrong `sk-synapse-` key is refused).
 */
import type { IncomingHttpHeaders } from "node:http";
import { checkSite, hasValidCredentials, isJsonType, secretsEqual, type GuardSettings, type HeaderReader } from "~/server/http/guard";
import { API_KEY_PREFIX, bearerOf, hashApiKey } from "./api-key";
import type { KeyStore } from "./key-store";
import { GatewayError } from "./openai-error";

/** Who is calling: the admin (token, session or open loopback) or a key, with the models it may use. */
export interface Caller {
  kind: "admin" | "open" | "key";
  /** Model names; null: every model. */
  models: ReadonlySet<string> | null;
  keyName?: string;
}

/**
 * Node's parsed headers (lower-case names, values trimmed, repeats already
 * joined except set-cookie) read as the guard reads a fetch Headers. A view,
 * not a copy: building a Headers object cost every gateway request more
 * than the few lookups the checks make.
 */
export function headerReader(src: IncomingHttpHeaders): HeaderReader {
  return {
    get(name: string): string | null {
      const v = src[name.toLowerCase()];
      return v === undefined ? null : Array.isArray(v) ? v.join(", ") : v;
    },
  };
}

const unauthorized = (why: string) => new GatewayError(401, "authentication_error", "invalid_api_key", why);

/**
 * The caller, or throws the GatewayError to answer. A Promise only when a
 * gateway key must be looked up; otherwise the answer at once (a request
 * without a key, or with the admin token, waits for no microtask).
 */
export function checkAccess(method: string, path: string, rawHeaders: IncomingHttpHeaders, settings: GuardSettings, keys: KeyStore | null): Caller | Promise<Caller> {
  const headers = headerReader(rawHeaders);
  const site = checkSite({ method, pathname: path, headers }, settings);
  if (!site.ok) throw new GatewayError(site.status, "permission_error", site.code.toLowerCase(), site.message);
  if (method === "POST" && !isJsonType(headers.get("content-type"))) {
    throw new GatewayError(415, "invalid_request_error", "unsupported_media_type", `the gateway takes JSON bodies: send Content-Type: application/json (got ${JSON.stringify(headers.get("content-type") ?? "none")})`);
  }
  const bearer = bearerOf(rawHeaders.authorization);
  if (bearer !== null && settings.apiToken && secretsEqual(bearer, settings.apiToken)) return { kind: "admin", models: null };
  if (bearer !== null && bearer.startsWith(API_KEY_PREFIX)) {
    return (keys ? keys.lookup(hashApiKey(bearer)) : Promise.resolve(null)).then((grant): Caller => {
      if (!grant) throw unauthorized("this API key is not valid (deleted, or mistyped); create one in the dashboard (Settings → Gateway API keys)");
      return { kind: "key", models: grant.models.length > 0 ? new Set(grant.models) : null, keyName: grant.name };
    });
  }
  if (settings.apiToken) {
    if (bearer === null && hasValidCredentials(headers, settings.apiToken)) return { kind: "admin", models: null };
    throw unauthorized("missing or wrong API key: send Authorization: Bearer <a gateway API key, or SYNAPSE_API_TOKEN>");
  }
  return { kind: "open", models: null };
}

/** 403 when the caller's key is limited to other models. */
export function checkModelAllowed(caller: Caller, modelName: string): void {
  if (caller.models !== null && !caller.models.has(modelName)) {
    throw new GatewayError(403, "permission_error", "model_not_allowed", `this API key (${caller.keyName ?? "?"}) may use ${[...caller.models].join(", ")}, not ${JSON.stringify(modelName)}`, { param: "model" });
  }
}
