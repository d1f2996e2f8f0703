import { describe, expect, it } from "vitest";
import { EnvError, parseEnv } from "./env";

function problems(source: Record<string, string>): string[] {
  try {
    parseEnv(source);
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(EnvError);
    return (err as EnvError).problems;
  }
}

describe("app environment", () => {
  it("works on a fresh machine with nothing set", () => {
    const env = parseEnv({});
    expect(env).toMatchObject({ DATABASE_URL: "file:./data/synapse.db", HOSTNAME: "127.0.0.1", PORT: 3000, USE_EXTERNAL_SERVERS: false });
  });

  it("names the variable and the expected form for bad values", () => {
    expect(problems({ PORT: "eighty" })).toEqual([expect.stringContaining("PORT must be a port number")]);
    expect(problems({ USE_EXTERNAL_SERVERS: "maybe" })).toEqual([expect.stringContaining("USE_EXTERNAL_SERVERS must be true or false")]);
    expect(problems({ LOG_LEVEL: "loud" })).toEqual([expect.stringContaining("LOG_LEVEL")]);
  });

  it("requires a token when the app is reachable beyond loopback", () => {
    expect(problems({ HOSTNAME: "0.0.0.0" })).toEqual([expect.stringContaining("SYNAPSE_API_TOKEN is required when HOSTNAME=0.0.0.0")]);
    expect(problems({ HOSTNAME: "0.0.0.0", SYNAPSE_API_TOKEN: "0123456789abcdef" })).toEqual([]);
  });

  it("a name in HOSTNAME (a container's or shell's machine name) gets the way to serve loopback only too; an address does not", () => {
    expect(problems({ HOSTNAME: "3f9c2a1b7d4e" })).toEqual([
      "SYNAPSE_API_TOKEN is required when HOSTNAME=3f9c2a1b7d4e (reachable beyond loopback); set a random string of 16+ characters, or HOSTNAME=127.0.0.1 to serve this machine only (HOSTNAME=3f9c2a1b7d4e may be this machine's name, which containers and some shells put in the environment)",
    ]);
    expect(problems({ HOSTNAME: "192.168.1.20" })[0]).not.toContain("machine's name");
    expect(problems({ HOSTNAME: "::" })[0]).not.toContain("machine's name");
  });

  it("follows the published address in a container: loopback publish needs no token, a LAN publish does", () => {
    expect(problems({ HOSTNAME: "0.0.0.0", SYNAPSE_PUBLISH_ADDRESS: "127.0.0.1" })).toEqual([]);
    expect(problems({ HOSTNAME: "0.0.0.0", SYNAPSE_PUBLISH_ADDRESS: "0.0.0.0" })).toEqual([expect.stringContaining("SYNAPSE_PUBLISH_ADDRESS=0.0.0.0")]);
  });

  it("treats empty values as unset (docker-compose writes VAR= for blanks)", () => {
    expect(parseEnv({ PORT: "", SYNAPSE_API_TOKEN: "" }).PORT).toBe(3000);
  });
});
