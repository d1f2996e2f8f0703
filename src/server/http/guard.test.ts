import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { acceptedHostNames, allowlistName, checkRequest, checkSite, hasValidCredentials, hostName, secretsEqual, SESSION_COOKIE, sessionValue, type GuardSettings } from "./guard";

const open: GuardSettings = { allowedHosts: [], listenHost: "127.0.0.1", apiToken: undefined };
const TOKEN = "0123456789abcdef-token";
const locked: GuardSettings = { allowedHosts: ["synapse.lan"], listenHost: "0.0.0.0", apiToken: TOKEN };

function req(method: string, pathname: string, headers: Record<string, string>) {
  return { method, pathname, headers: new Headers(headers) };
}

describe("request guard", () => {
  it("accepts loopback hosts with or without a port", () => {
    for (const host of ["localhost:3000", "127.0.0.1:3000", "[::1]:3000", "localhost"]) {
      expect(checkRequest(req("GET", "/", { host }), open)).toEqual({ ok: true });
    }
  });

  it("refuses a foreign Host header (DNS rebinding) with 403", () => {
    const v = checkRequest(req("GET", "/api/health", { host: "attacker.example:3000" }), open);
    expect(v).toMatchObject({ ok: false, status: 403, code: "FORBIDDEN_HOST" });
    expect(!v.ok && v.message).toContain("SYNAPSE_ALLOWED_HOSTS");
  });

  it("accepts names from the allowlist, case-insensitively", () => {
    expect(checkRequest(req("GET", "/", { host: "Synapse.LAN:3000" }), locked).ok).toBe(true);
  });

  it("refuses a foreign Origin and Origin: null, accepts its own", () => {
    const base = { host: "localhost:3000", "content-type": "application/json" };
    expect(checkRequest(req("POST", "/api/trpc/servers.startAll", { ...base, origin: "https://evil.example" }), open)).toMatchObject({ status: 403, code: "FORBIDDEN_ORIGIN" });
    expect(checkRequest(req("POST", "/api/trpc/servers.startAll", { ...base, origin: "null" }), open)).toMatchObject({ status: 403, code: "FORBIDDEN_ORIGIN" });
    expect(checkRequest(req("POST", "/api/trpc/servers.startAll", { ...base, origin: "http://localhost:3000" }), open)).toEqual({ ok: true });
  });

  it("treats another port on the same host as another site", () => {
    const base = { host: "localhost:3000" };
    expect(checkRequest(req("POST", "/api/models/servers/stop-all", { ...base, origin: "http://localhost:9999" }), open)).toMatchObject({ status: 403, code: "FORBIDDEN_ORIGIN" });
    expect(checkRequest(req("POST", "/api/models/servers/stop-all", { ...base, "sec-fetch-site": "same-site" }), open)).toMatchObject({ status: 403 });
    expect(checkRequest(req("POST", "/api/models/servers/stop-all", { ...base, "sec-fetch-site": "cross-site" }), open)).toMatchObject({ status: 403 });
    expect(checkRequest(req("POST", "/api/models/servers/stop-all", { ...base, "sec-fetch-site": "same-origin" }), open)).toEqual({ ok: true });
    // Reads are harmless without credentials from another site, and EventSource/GETs keep working.
    expect(checkRequest(req("GET", "/api/models/servers/status", { ...base, "sec-fetch-site": "same-site" }), open)).toEqual({ ok: true });
  });

  it("requires the token on the API when one is configured, not on /api/health", () => {
    const host = { host: "synapse.lan" };
    expect(checkRequest(req("GET", "/api/models/servers/status", host), locked)).toMatchObject({ status: 401 });
    expect(checkRequest(req("GET", "/api/models/servers/status", { ...host, authorization: "Bearer wrong-token-wrong-token" }), locked)).toMatchObject({ status: 401 });
    expect(checkRequest(req("GET", "/api/models/servers/status", { ...host, authorization: `Bearer ${TOKEN}` }), locked)).toEqual({ ok: true });
    expect(checkRequest(req("GET", "/api/health", host), locked)).toEqual({ ok: true });
    // Pages load without it; their API calls carry the session cookie.
    expect(checkRequest(req("GET", "/", host), locked)).toEqual({ ok: true });
  });

  it("accepts the session cookie, never the raw token as a cookie", () => {
    expect(hasValidCredentials(new Headers({ cookie: `a=b; ${SESSION_COOKIE}=${sessionValue(TOKEN)}` }), TOKEN)).toBe(true);
    expect(hasValidCredentials(new Headers({ cookie: `${SESSION_COOKIE}=${TOKEN}` }), TOKEN)).toBe(false);
  });

  it("needs JSON on mutations (415), allows an empty POST for curl", () => {
    const host = { host: "localhost:3000" };
    expect(checkRequest(req("POST", "/api/models/servers/start-all", { ...host, "content-type": "text/plain", "content-length": "2" }), open)).toMatchObject({ status: 415 });
    expect(checkRequest(req("POST", "/api/models/servers/start-all", { ...host, "content-type": "application/x-www-form-urlencoded" }), open)).toMatchObject({ status: 415 });
    expect(checkRequest(req("POST", "/api/models/servers/start-all", { ...host, "content-length": "1" }), open)).toMatchObject({ status: 415 });
    expect(checkRequest(req("POST", "/api/models/servers/start-all", { ...host, "content-length": "0" }), open)).toEqual({ ok: true });
    expect(checkRequest(req("POST", "/api/models/servers/start-all", { ...host, "content-type": "application/json; charset=utf-8" }), open)).toEqual({ ok: true });
  });

  it("an empty body with a form content type (curl -d '') is 415 saying how to send it, as the README says", () => {
    const host = { host: "localhost:3000" };
    const v = checkRequest(req("POST", "/api/models/servers/start-all", { ...host, "content-type": "application/x-www-form-urlencoded", "content-length": "0" }), open);
    expect(v).toMatchObject({ status: 415, message: expect.stringMatching(/an empty body must come without a Content-Type \(curl -d '' sends a form type: leave out -d, or add -H 'Content-Type: application\/json'\)/) });
    const readme = readFileSync(path.resolve(import.meta.dirname, "../../../README.md"), "utf8").replace(/\s+/g, " ");
    expect(readme).toContain("A form or text content type gets 415 even with an empty body (`curl -d ''` sends a form type;");
    expect(readme).not.toContain("Mutations take JSON or an empty body");
  });

  it("a tRPC mutation without the JSON type, even an empty one (plain curl -X POST), is 415 saying what to send; with it, it passes", () => {
    const host = { host: "localhost:3000" };
    const hint = `with curl, add -H 'Content-Type: application/json' -d '<input>' ('{}' when it takes none: curl -X POST alone sends no Content-Type, and curl -d '' a form type)`;
    // Passed on before, to tRPC's own 415 "Missing content-type header", which said nothing of what to send.
    expect(checkRequest(req("POST", "/api/trpc/servers.startAll", host), open)).toEqual({
      ok: false,
      status: 415,
      code: "UNSUPPORTED_MEDIA_TYPE",
      message: `tRPC mutations need Content-Type: application/json and the input as a JSON body (got "none"); ${hint}`,
    });
    for (const [type, length] of [["application/x-www-form-urlencoded", "0"], ["text/plain", "12"]] as const) {
      expect(checkRequest(req("POST", "/api/trpc/models.create", { ...host, "content-type": type, "content-length": length }), open)).toMatchObject({
        status: 415,
        message: `tRPC mutations need Content-Type: application/json and the input as a JSON body (got "${type}"); ${hint}`,
      });
    }
    expect(checkRequest(req("POST", "/api/trpc/servers.startAll", { ...host, "content-type": "application/json", "content-length": "2" }), open)).toEqual({ ok: true });
    // REST routes keep taking an empty POST with no Content-Type; tRPC queries are GETs.
    expect(checkRequest(req("POST", "/api/models/servers/start-all", host), open)).toEqual({ ok: true });
    expect(checkRequest(req("GET", "/api/trpc/models.list", host), open)).toEqual({ ok: true });
  });

  it("compares secrets of different lengths without throwing", () => {
    expect(secretsEqual("a", "ab")).toBe(false);
    expect(secretsEqual(TOKEN, TOKEN)).toBe(true);
  });

  it("strips ports from host names, keeps IPv6 brackets", () => {
    expect(hostName("Example.com:8080")).toBe("example.com");
    expect(hostName("[::1]:3000")).toBe("[::1]");
  });
});

describe("allowlist entries are matched as Host names", () => {
  const lan: GuardSettings = { allowedHosts: ["192.0.2.2:3429", "FE80::1", "[fe80::2]:80", " studio "], listenHost: "0.0.0.0", apiToken: TOKEN };
  const site = (host: string) => checkSite({ method: "GET", pathname: "/", headers: new Headers({ host }) }, lan);

  it("an entry with a port names its host (a Host header carries the port; the entry used to never match)", () => {
    expect(site("192.0.2.2:3429")).toEqual({ ok: true });
    expect(site("192.0.2.2")).toEqual({ ok: true });
    expect(allowlistName("192.0.2.2:3429")).toBe("192.0.2.2");
  });

  it("a bare IPv6 entry is bracketed as a Host sends it; a bracketed one loses its port; spaces and case do not count", () => {
    expect(site("[fe80::1]:3000")).toEqual({ ok: true });
    expect(site("[fe80::2]:3000")).toEqual({ ok: true });
    expect(site("Studio:3000")).toEqual({ ok: true });
    expect(acceptedHostNames(lan)).toEqual(["localhost", "127.0.0.1", "[::1]", "192.0.2.2", "[fe80::1]", "[fe80::2]", "studio"]);
  });

  it("the 403 names what to add: the host without its port", () => {
    const v = site("192.0.2.9:3429");
    expect(v).toMatchObject({ ok: false, status: 403, code: "FORBIDDEN_HOST" });
    expect(v.ok ? "" : v.message).toContain("add 192.0.2.9 to SYNAPSE_ALLOWED_HOSTS (names, comma separated, without a port)");
  });
});
