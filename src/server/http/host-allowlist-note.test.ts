/** What start-up says of the Host allowlist beyond loopback: the names the guard accepts, and what to add. */
import { describe, expect, it } from "vitest";
import { parseEnv } from "../env";
import { checkRequest } from "./guard";
import { hostAllowlistNote } from "./host-allowlist-note";

const TOKEN = "a-token-of-sixteen-chars";
const machine = { hostname: "studio", addresses: ["192.0.2.2", "198.51.100.7", "203.0.113.9"] };
const note = (vars: Record<string, string>) => hostAllowlistNote(parseEnv({ SYNAPSE_API_TOKEN: TOKEN, ...vars }), machine);

describe("hostAllowlistNote", () => {
  it("on loopback (the default, or HOSTNAME=localhost): nothing to say", () => {
    expect(note({})).toBeNull();
    expect(note({ HOSTNAME: "localhost" })).toBeNull();
    // In a container listening on 0.0.0.0 but published on loopback only: loopback names are what clients send.
    expect(note({ HOSTNAME: "0.0.0.0", SYNAPSE_PUBLISH_ADDRESS: "127.0.0.1" })).toBeNull();
  });

  it("HOSTNAME=0.0.0.0 without SYNAPSE_ALLOWED_HOSTS: a warning naming the accepted names and an example with this machine's", () => {
    const n = note({ HOSTNAME: "0.0.0.0", PORT: "3412" })!;
    expect(n.level).toBe("warn");
    expect(n.acceptedHosts).toEqual(["localhost", "127.0.0.1", "[::1]"]);
    expect(n.message).toBe(
      "HOSTNAME=0.0.0.0 is reachable beyond loopback, but requests are answered only when their Host is one of: localhost, 127.0.0.1, [::1] (SYNAPSE_ALLOWED_HOSTS is unset); " +
        "a request by this machine's LAN address or name (such as http://192.0.2.2:3412) gets 403 until that name is in SYNAPSE_ALLOWED_HOSTS (comma separated, no port), " +
        "e.g. SYNAPSE_ALLOWED_HOSTS=192.0.2.2,198.51.100.7,studio; a reverse proxy that sends one of the names above needs none",
    );
  });

  it("the names it lists are the guard's: each is let through, and the LAN address it warns of is refused", () => {
    const env = parseEnv({ SYNAPSE_API_TOKEN: TOKEN, HOSTNAME: "0.0.0.0", PORT: "3412" });
    const settings = { allowedHosts: env.SYNAPSE_ALLOWED_HOSTS, listenHost: env.HOSTNAME, apiToken: env.SYNAPSE_API_TOKEN };
    const ask = (host: string) => checkRequest({ method: "GET", pathname: "/", headers: new Headers({ host }) }, settings);
    // As a client sends each, with the port (every name listed is one a client can send: an IPv6 one bracketed).
    for (const h of hostAllowlistNote(env, machine)!.acceptedHosts) expect(ask(`${h}:3412`), h).toEqual({ ok: true });
    expect(ask("192.0.2.2:3412")).toMatchObject({ ok: false, status: 403 });
    const fixed = parseEnv({ SYNAPSE_API_TOKEN: TOKEN, HOSTNAME: "0.0.0.0", PORT: "3412", SYNAPSE_ALLOWED_HOSTS: "192.0.2.2,studio" });
    expect(checkRequest({ method: "GET", pathname: "/", headers: new Headers({ host: "192.0.2.2:3412" }) }, { allowedHosts: fixed.SYNAPSE_ALLOWED_HOSTS, listenHost: fixed.HOSTNAME, apiToken: TOKEN })).toEqual({ ok: true });
  });

  it("a listen address that is a LAN address is accepted already: the example names the others", () => {
    const n = note({ HOSTNAME: "192.0.2.2" })!;
    expect(n.acceptedHosts).toContain("192.0.2.2");
    expect(n.message).toContain("e.g. SYNAPSE_ALLOWED_HOSTS=198.51.100.7,studio;");
  });

  it("with SYNAPSE_ALLOWED_HOSTS set: which names are answered, at info", () => {
    const n = note({ HOSTNAME: "0.0.0.0", SYNAPSE_ALLOWED_HOSTS: "Studio.local, 192.0.2.2" })!;
    expect(n.level).toBe("info");
    expect(n.message).toBe("HOSTNAME=0.0.0.0 is reachable beyond loopback; requests are answered when their Host is one of: localhost, 127.0.0.1, [::1], studio.local, 192.0.2.2 (any other gets 403; SYNAPSE_ALLOWED_HOSTS adds names)");
  });

  it("in a container published beyond loopback: the published address as the example, not the container's own names", () => {
    expect(note({ HOSTNAME: "0.0.0.0", SYNAPSE_PUBLISH_ADDRESS: "192.0.2.50" })!.message).toMatch(/^SYNAPSE_PUBLISH_ADDRESS=192\.0\.2\.50 is reachable beyond loopback, .*e\.g\. SYNAPSE_ALLOWED_HOSTS=192\.0\.2\.50;/);
    // Published on every interface: the machine's names are not known in the container, so a generic example.
    expect(note({ HOSTNAME: "0.0.0.0", SYNAPSE_PUBLISH_ADDRESS: "0.0.0.0" })!.message).toContain("e.g. SYNAPSE_ALLOWED_HOSTS=192.168.1.20,my-mac.local;");
  });
});
