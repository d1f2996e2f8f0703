import { describe, expect, it } from "vitest";
import { EnvError, parseEnv } from "./env";
import { localAgentConfig } from "./services/fleet/links";

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

  it("reads the local agent's log cap and health interval as the standalone agent does, with its checks", () => {
    const host = { id: "h", name: "local", linkKind: "local", sshHost: null, sshPort: 22, sshUser: null, sshIdentityFile: null, hostKeyFingerprint: null, hostModelsRoot: null, llamaServerBin: null };
    expect(localAgentConfig(host, parseEnv({}))).toMatchObject({ logMaxBytes: 10 * 1024 * 1024, healthIntervalMs: 5000 });
    expect(localAgentConfig(host, parseEnv({ SYNAPSE_LOG_MAX_BYTES: "65536", SYNAPSE_HEALTH_INTERVAL_MS: "700" }))).toMatchObject({ logMaxBytes: 65536, healthIntervalMs: 700 });
    expect(problems({ SYNAPSE_LOG_MAX_BYTES: "64k" })).toEqual(['SYNAPSE_LOG_MAX_BYTES must be a whole number between 4096 and 10737418240 (got "64k")']);
    expect(problems({ SYNAPSE_HEALTH_INTERVAL_MS: "50" })).toEqual(['SYNAPSE_HEALTH_INTERVAL_MS must be a whole number between 100 and 3600000 (got "50")']);
  });

  it("says the value each bad variable got, quoted, beside what it accepts", () => {
    expect(problems({ PORT: "abc" })).toEqual(['PORT must be a port number (1-65535) (got "abc")']);
    expect(problems({ PORT: "70000" })).toEqual(['PORT must be a port number (1-65535) (got "70000")']);
    // Number() would read these as 80 and 1000: not what the person meant, nor what the CLI reads from PORT.
    expect(problems({ PORT: "0x50" })).toEqual(['PORT must be a port number (1-65535) (got "0x50")']);
    expect(problems({ PORT: "1e3" })).toEqual(['PORT must be a port number (1-65535) (got "1e3")']);
    expect(problems({ NODE_ENV: "prod" })).toEqual(['NODE_ENV must be development, production or test (got "prod")']);
    expect(problems({ SYNAPSE_RECONCILE_INTERVAL_MS: "2s" })).toEqual(['SYNAPSE_RECONCILE_INTERVAL_MS must be a whole number of milliseconds between 100 and 600000 (got "2s")']);
    expect(problems({ SYNAPSE_RECONCILE_INTERVAL_MS: "50" })).toEqual(['SYNAPSE_RECONCILE_INTERVAL_MS must be a whole number of milliseconds between 100 and 600000 (got "50")']);
    expect(problems({ SYNAPSE_SSH_HOST_ALIAS: "mac host" })).toEqual([`SYNAPSE_SSH_HOST_ALIAS must be a plain host alias (letters, digits, '.', '_', '-'), a Host of SYNAPSE_SSH_DIR/config (got "mac host")`]);
    // Every bad variable at once, each with its own value.
    const all = problems({ PORT: "eighty", USE_EXTERNAL_SERVERS: "maybe", LOG_LEVEL: "loud", SYNAPSE_LEAVE_SERVERS_RUNNING: "sometimes", DATABASE_URL: "mysql://db/synapse" });
    expect(all).toEqual([
      'DATABASE_URL must be a file: URL or a path to an SQLite file (got "mysql://db/synapse")',
      'PORT must be a port number (1-65535) (got "eighty")',
      'USE_EXTERNAL_SERVERS must be true or false (or 1/0, yes/no) (got "maybe")',
      'SYNAPSE_LEAVE_SERVERS_RUNNING must be true or false (or 1/0, yes/no) (got "sometimes")',
      'LOG_LEVEL must be debug, info, warn or error (got "loud")',
    ]);
  });

  it("bounds a long value, and never echoes a secret: a token's length only, a URL's password masked", () => {
    const [long] = problems({ LOG_LEVEL: "x".repeat(5000) });
    expect(long).toBe(`LOG_LEVEL must be debug, info, warn or error (got "${"x".repeat(79)}…")`);
    const token = "hunter2-short";
    expect(problems({ SYNAPSE_API_TOKEN: token })).toEqual(["SYNAPSE_API_TOKEN must be at least 16 characters (got 13 characters; a secret, not shown)"]);
    const [db] = problems({ DATABASE_URL: "postgres://synapse:hunter2@db.lan:5432/synapse" });
    expect(db).toBe('DATABASE_URL must be a file: URL or a path to an SQLite file (got "postgres://synapse:***@db.lan:5432/synapse")');
    expect(db).not.toContain("hunter2");
    // A variable that is not set has no value to show.
    expect(problems({ HOSTNAME: "0.0.0.0" })[0]).not.toContain("(got");
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
