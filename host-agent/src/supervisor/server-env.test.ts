import { describe, expect, it } from "vitest";
import { serverEnvironment } from "./server-env.ts";

describe("serverEnvironment", () => {
  it("keeps PATH, HOME, the locale and the temp folder, adds the server's own, and drops everything else", () => {
    const parent = {
      PATH: "/usr/bin", HOME: "/home/u", LANG: "en_US.UTF-8", LC_ALL: "C", TMPDIR: "/tmp/u",
      SYNAPSE_API_TOKEN: "secret", LLAMA_ARG_CTX_SIZE: "99999", DATABASE_URL: "file:x.db", NODE_OPTIONS: "--inspect",
    };
    const env = serverEnvironment(parent, { LLAMA_API_KEY: "k" });
    expect(env).toEqual({ PATH: "/usr/bin", HOME: "/home/u", LANG: "en_US.UTF-8", LC_ALL: "C", TMPDIR: "/tmp/u", LLAMA_API_KEY: "k" });
  });

  it("the agent's own variables win over inherited ones", () => {
    expect(serverEnvironment({ PATH: "/a" }, { PATH: "/b" })).toEqual({ PATH: "/b" });
  });
});
