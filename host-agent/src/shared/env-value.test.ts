import { describe, expect, it } from "vitest";
import { isSecretName, SHOWN_VALUE_MAX_CHARS, shownValue, withGotValue } from "./env-value.ts";

describe("shownValue", () => {
  it("quotes a value, bounded to SHOWN_VALUE_MAX_CHARS characters", () => {
    expect(shownValue("PORT", "abc")).toBe('"abc"');
    expect(shownValue("PORT", 'a "quoted"\nvalue')).toBe('"a \\"quoted\\"\\nvalue"');
    expect(JSON.parse(shownValue("LOG_LEVEL", "y".repeat(1000)))).toBe(`${"y".repeat(SHOWN_VALUE_MAX_CHARS - 1)}…`);
  });

  it("a secret's length only; a URL's password masked", () => {
    for (const name of ["SYNAPSE_API_TOKEN", "HF_TOKEN", "OPENAI_API_KEY", "GATEWAY_KEY", "DB_PASSWORD", "CLIENT_SECRET", "SSH_PRIVATE_KEY_FILE"]) {
      expect(isSecretName(name), name).toBe(true);
      expect(shownValue(name, "s3cr3t-value")).toBe("12 characters; a secret, not shown");
    }
    for (const name of ["PORT", "SYNAPSE_SSH_HOST_ALIAS", "HOSTNAME", "MONKEY_MODE", "DATABASE_URL"]) expect(isSecretName(name), name).toBe(false);
    expect(shownValue("DATABASE_URL", "postgres://app:p%40ss@db:5432/synapse?x=1")).toBe('"postgres://app:***@db:5432/synapse?x=1"');
    expect(shownValue("DATABASE_URL", "postgres://app@db/synapse")).toBe('"postgres://app@db/synapse"');
  });
});

describe("withGotValue", () => {
  it("adds the value once; nothing for a variable that is not set", () => {
    expect(withGotValue("PORT must be a port number (1-65535)", "PORT", "abc")).toBe('PORT must be a port number (1-65535) (got "abc")');
    expect(withGotValue('X must be absolute (got "y")', "X", "y")).toBe('X must be absolute (got "y")');
    expect(withGotValue("SYNAPSE_API_TOKEN is required", "SYNAPSE_API_TOKEN", undefined)).toBe("SYNAPSE_API_TOKEN is required");
  });
});
