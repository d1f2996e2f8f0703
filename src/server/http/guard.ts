/**
 * The checks every HTTP request passes before any route runs (src/proxy.ts):
 *
 * - Host header allowlist: loopback names, the listen address, and
 *   SYNAPSE_ALLOWED_HOSTS. A page served to a foreign name is how DNS
 *   rebinding reaches a loopback service, so anything else is 403.
 * - Origin check: a browser request that carries an Origin must be same-origin
 *   (host and port equal to the Host header); `Origin: null` (sandboxed
 *   frames, file://) is refused, and so is a mutation that the browser marks
 *   `Sec-Fetch-Site: cross-site` or `same-site` (another port of this host).
 * - Bearer token: when SYNAPSE_API_TOKEN is set, /api/* needs
 *   `Authorization: Bearer <token>` or the session cookie the login page sets;
 *   compared in constant time. `/api/health` stays open for health checks.
 * - Mutations (POST, PUT, PATCH, DELETE) need a JSON body
 *   (`Content-Type: application/json`); an empty body with no Content-Type
 *   is allowed so `curl -X POST .../start-all` keeps working. A form or
 *   text/plain body, even an empty one (`curl -d ''`), is what a cross-site
 *   page can send without a preflight, so it is 415. tRPC (/api/trpc/…)
 *   reads every mutation's body as JSON, an empty one too: there the JSON
 *   type is needed always, and the 415 says what to send (tRPC's own answer
 *   to a missing type, "Missing content-type header", said nothing of it).
 *   The README says the same.
 *
 * Pure: takes the request's parts and the settings, returns a verdict.
 */
import { createHash, timingSafeEqual } from "node:crypto";

export const SESSION_COOKIE = "synapse_session";

export interface GuardSettings {
  /** Lower-case host names (no port) the app answers to, besides loopback. */
  allowedHosts: string[];
  /** The app's listen address (HOSTNAME). */
  listenHost: string;
  apiToken: string | undefined;
}

/** What the guard reads of a request's headers: a fetch `Headers`, or a view of Node's (gateway/access.ts). */
export type HeaderReader = Pick<Headers, "get">;

export interface GuardRequest {
  method: string;
  pathname: string;
  headers: HeaderReader;
}

export type GuardVerdict = { ok: true } | { ok: false; status: 401 | 403 | 415; code: string; message: string };

/** As hostName gives them: an IPv6 address comes in brackets in a Host header (RFC 9110 §7.2, RFC 3986 §3.2.2). */
const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"];
const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** Routes that answer without a token (health checks, the login exchange). */
const OPEN_API = new Set(["/api/health", "/api/session"]);

/** "Host:port" → lower-case host name without the port (IPv6 keeps its brackets). */
export function hostName(hostHeader: string): string {
  const h = hostHeader.trim().toLowerCase();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    return end === -1 ? h : h.slice(0, end + 1);
  }
  const colon = h.indexOf(":");
  return colon === -1 ? h : h.slice(0, colon);
}

/**
 * An allowlist entry as hostName gives a Host header's name, so that it can match: lower case, without a
 * port ("192.0.2.2:3412" → "192.0.2.2": a Host carries the port, the allowlist names the host), an IPv6
 * address in brackets ("fe80::1" → "[fe80::1]"). A port in an entry was kept and never matched.
 */
export function allowlistName(entry: string): string {
  const e = entry.trim().toLowerCase();
  // Two colons or more without brackets: a bare IPv6 address, not a name and a port.
  if (!e.startsWith("[") && e.indexOf(":") !== e.lastIndexOf(":")) return `[${e}]`;
  return hostName(e);
}

/** The allowlist made from each settings object (they are made once per app, and checked on every request). */
const allowedBySettings = new WeakMap<GuardSettings, ReadonlySet<string>>();

function allowedHostNames(settings: GuardSettings): ReadonlySet<string> {
  let names = allowedBySettings.get(settings);
  if (!names) allowedBySettings.set(settings, (names = makeAllowedHostNames(settings)));
  return names;
}

/**
 * The Host names (no port, lower case) the guard accepts with these settings, in order: loopback names, the
 * listen address (unless a wildcard: 0.0.0.0 and :: are not names a client sends), SYNAPSE_ALLOWED_HOSTS.
 * What start-up prints when the app listens beyond loopback (host-allowlist-note.ts).
 */
export function acceptedHostNames(settings: GuardSettings): string[] {
  return [...allowedHostNames(settings)];
}

function makeAllowedHostNames(settings: GuardSettings): Set<string> {
  const names = new Set(LOOPBACK_NAMES);
  const listen = settings.listenHost.toLowerCase();
  // 0.0.0.0 / :: are not names a client can send; the allowlist must name the host then.
  if (listen !== "0.0.0.0" && listen !== "::") names.add(allowlistName(listen));
  for (const h of settings.allowedHosts) if (h.trim() !== "") names.add(allowlistName(h));
  return names;
}

/** SHA-256 digests of the expected secrets compared so far (the admin token: one or two per app). */
const expectedDigests = new Map<string, Buffer>();

/** Constant-time comparison of two secrets of any length. */
export function secretsEqual(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  let b = expectedDigests.get(expected);
  if (!b) {
    b = createHash("sha256").update(expected).digest();
    // Bounded: the expected side is the app's own secrets, not callers' input.
    if (expectedDigests.size >= 8) expectedDigests.clear();
    expectedDigests.set(expected, b);
  }
  return timingSafeEqual(a, b) && given.length === expected.length;
}

/** The session cookie's value for a token: a hash, so the cookie never holds the token itself. */
export function sessionValue(token: string): string {
  return createHash("sha256").update(`synapse-session:${token}`).digest("base64url");
}

function cookie(headers: HeaderReader, name: string): string | undefined {
  const raw = headers.get("cookie");
  if (!raw) return undefined;
  for (const part of raw.split(";")) {
    const eq = part.indexOf("=");
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** True when the request carries the token (bearer) or the matching session cookie. */
export function hasValidCredentials(headers: HeaderReader, token: string): boolean {
  const auth = headers.get("authorization");
  if (auth?.toLowerCase().startsWith("bearer ")) return secretsEqual(auth.slice(7).trim(), token);
  const session = cookie(headers, SESSION_COOKIE);
  return session !== undefined && secretsEqual(session, sessionValue(token));
}

export function checkRequest(req: GuardRequest, settings: GuardSettings): GuardVerdict {
  const site = checkSite(req, settings);
  if (!site.ok) return site;
  const isApi = req.pathname === "/api" || req.pathname.startsWith("/api/");
  if (isApi && settings.apiToken && !OPEN_API.has(req.pathname) && !hasValidCredentials(req.headers, settings.apiToken)) {
    return { ok: false, status: 401, code: "UNAUTHORIZED", message: "missing or wrong API token: send Authorization: Bearer <SYNAPSE_API_TOKEN>" };
  }
  if (isApi && MUTATING.has(req.method.toUpperCase())) {
    const type = req.headers.get("content-type");
    if (isTrpcPath(req.pathname)) {
      if (!isJsonType(type)) return { ok: false, status: 415, code: "UNSUPPORTED_MEDIA_TYPE", message: trpcMediaTypeMessage(type) };
      return { ok: true };
    }
    const length = req.headers.get("content-length");
    const emptyBody = type === null && (length === null || length === "0");
    if (!isJsonType(type) && !emptyBody) {
      // An empty form or text body is refused too: a cross-site page can send one without a preflight.
      const hint = type !== null && (length === null || length === "0") ? "; an empty body must come without a Content-Type (curl -d '' sends a form type: leave out -d, or add -H 'Content-Type: application/json')" : "";
      return { ok: false, status: 415, code: "UNSUPPORTED_MEDIA_TYPE", message: `mutations need Content-Type: application/json, or no body and no Content-Type (got ${JSON.stringify(type ?? "none")})${hint}` };
    }
  }
  return { ok: true };
}

/** tRPC's endpoint and its procedures (`/api/trpc/<router>.<procedure>`). */
function isTrpcPath(pathname: string): boolean {
  return pathname === "/api/trpc" || pathname.startsWith("/api/trpc/");
}

/** The 415 of a tRPC mutation without the JSON type (`type`: its Content-Type, null when it has none). */
function trpcMediaTypeMessage(type: string | null): string {
  return `tRPC mutations need Content-Type: application/json and the input as a JSON body (got ${JSON.stringify(type ?? "none")}); with curl, add -H 'Content-Type: application/json' -d '<input>' ('{}' when it takes none: curl -X POST alone sends no Content-Type, and curl -d '' a form type)`;
}

/** True for `application/json`, with or without parameters. */
export function isJsonType(type: string | null | undefined): boolean {
  return typeof type === "string" && /^application\/json\s*(;|$)/i.test(type.trim());
}

/**
 * The Host allowlist and the Origin / Sec-Fetch-Site checks alone (what every
 * route needs, whatever its own auth); the gateway (src/server/gateway) adds
 * its own credential and body rules after these.
 */
export function checkSite(req: GuardRequest, settings: GuardSettings): GuardVerdict {
  const allowed = allowedHostNames(settings);
  const host = req.headers.get("host");
  if (!host || !allowed.has(hostName(host))) {
    return {
      ok: false,
      status: 403,
      code: "FORBIDDEN_HOST",
      message: host
        ? `Host ${JSON.stringify(host)} is not allowed; add ${hostName(host)} to SYNAPSE_ALLOWED_HOSTS (names, comma separated, without a port) if this is the name you use for the app`
        : "the request has no Host header",
    };
  }
  const origin = req.headers.get("origin");
  if (origin !== null) {
    let originHost: string | null = null;
    try {
      originHost = origin === "null" ? null : new URL(origin).host;
    } catch {
      originHost = null;
    }
    // Same origin means the same host AND port: another port on localhost is another site
    // (and SameSite cookies do not tell ports apart).
    if (originHost === null || originHost.toLowerCase() !== host.trim().toLowerCase()) {
      return { ok: false, status: 403, code: "FORBIDDEN_ORIGIN", message: `Origin ${JSON.stringify(origin)} is not allowed (cross-site request)` };
    }
  }
  // Browsers say where a request comes from; a mutation from another site or port is refused even without an Origin.
  const fetchSite = req.headers.get("sec-fetch-site");
  if (MUTATING.has(req.method.toUpperCase()) && (fetchSite === "cross-site" || fetchSite === "same-site")) {
    return { ok: false, status: 403, code: "FORBIDDEN_ORIGIN", message: `cross-site request refused (Sec-Fetch-Site: ${fetchSite})` };
  }
  return { ok: true };
}
