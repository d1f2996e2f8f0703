import { describe, expect, it } from "vitest";
import { z } from "zod";
import { extraFlagSchema, methods, serverStatusSchema } from "./protocol.ts";

describe("extraFlagSchema's refusals say what to send", () => {
  it("a bare flag string (a script's usual first try) is told the object's shape; a bad value and an unknown flag by name", () => {
    const r = z.array(extraFlagSchema).safeParse(["--embeddings", { flag: "--seed", value: "x" }, { flag: "--nope" }]);
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => [i.path.join("."), i.message])).toEqual([
      ["0", 'an extra flag is an object {"flag": "--name", "value": "…"} (value only for a flag that takes one), e.g. {"flag": "--embeddings"}; got "--embeddings"'],
      ['1.value', '--seed does not take "x"; it takes a whole number from -2147483648 to 2147483647'],
      ["2.flag", expect.stringMatching(/^flag "--nope" is not allowed; allowed: --metrics, /)],
    ]);
  });
});

describe("extra flags' values: what llama-server would refuse at start is refused when saved", () => {
  const messages = (flags: unknown[]) => {
    const r = z.array(extraFlagSchema).safeParse(flags);
    return r.success ? [] : r.error.issues.map((i) => [i.path.join("."), i.message]);
  };

  it("a flag with a closed set of values (llama.cpp's common/arg.cpp lists) takes only those, and the refusal names flag, value and the set", () => {
    expect(messages([{ flag: "--pooling", value: "nonsense" }, { flag: "--cache-type-k", value: "q9_0" }, { flag: "--cache-type-v", value: "F16" }])).toEqual([
      ["0.value", '--pooling does not take "nonsense"; it takes none, mean, cls, last or rank'],
      ["1.value", '--cache-type-k does not take "q9_0"; it takes f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0 or q5_1'],
      ["2.value", '--cache-type-v does not take "F16"; it takes f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0 or q5_1'],
    ]);
    for (const value of ["none", "mean", "cls", "last", "rank"]) expect(messages([{ flag: "--pooling", value }])).toEqual([]);
    expect(messages([{ flag: "--cache-type-k", value: "q8_0" }, { flag: "--cache-type-v", value: "iq4_nl" }])).toEqual([]);
  });

  it("an integer flag takes what llama.cpp's std::stoi reads (32 bits); a number flag a decimal", () => {
    expect(messages([{ flag: "--top-k", value: "99999999999" }, { flag: "--timeout", value: "1.5" }, { flag: "--temp", value: "hot" }])).toEqual([
      ["0.value", '--top-k does not take "99999999999"; it takes a whole number from -2147483648 to 2147483647'],
      ["1.value", '--timeout does not take "1.5"; it takes a whole number from -2147483648 to 2147483647'],
      ["2.value", '--temp does not take "hot"; it takes a decimal number such as 0.8 or -1'],
    ]);
    // llama-server refuses 0 and below -1 ("cannot be 0 or less than -1").
    expect(messages([{ flag: "--sleep-idle-seconds", value: "0" }])).toEqual([["0.value", '--sleep-idle-seconds does not take "0"; it takes -1 (never sleep) or a whole number of seconds from 1 to 2147483647']]);
    expect(messages([{ flag: "--sleep-idle-seconds", value: "-1" }, { flag: "--sleep-idle-seconds", value: "300" }])).toEqual([]);
    expect(messages([{ flag: "--top-k", value: "2147483647" }, { flag: "--seed", value: "-1" }, { flag: "--temp", value: "0.7" }])).toEqual([]);
  });

  it("a flag the model has its own field for is pointed to that field by its label, long or short spelling", () => {
    expect(messages([{ flag: "--ctx-size", value: "4096" }, { flag: "-t", value: "2" }, { flag: "--parallel", value: "2" }, { flag: "--port", value: "8081" }, { flag: "--alias", value: "x" }])).toEqual([
      ["0.flag", '--ctx-size has its own field: set "Context size" (ctxSize) on the model instead of an extra flag'],
      ["1.flag", '-t has its own field: set "Threads" (threads) on the model instead of an extra flag'],
      ["2.flag", '--parallel has its own field: set "Parallel slots" (parallel) on the model instead of an extra flag'],
      ["3.flag", '--port has its own field: set "Port" (port) on the model instead of an extra flag'],
      ["4.flag", '--alias has its own field: set "Alias" (alias) on the model instead of an extra flag'],
    ]);
  });
});

describe("stop causes across versions (the app and the agents update separately)", () => {
  const status = { id: "alpha", state: "stopped", pid: null, port: 8080, startedAt: null, readyAt: null, exitCode: null, signal: null, reason: "stopped for a reason this app does not know", logPath: null, specHash: null };

  it("a status from a newer agent whose cause this checkout does not know is read whole, its cause null (the app infers one), not refused", () => {
    const r = serverStatusSchema.safeParse({ ...status, cause: "some-later-cause" });
    expect(r.success).toBe(true);
    expect(r.data).toMatchObject({ id: "alpha", state: "stopped", reason: "stopped for a reason this app does not know", cause: null });
    expect(serverStatusSchema.parse({ ...status, cause: "restart" }).cause).toBe("restart");
    expect(serverStatusSchema.parse(status).cause).toBeUndefined();
  });

  it("a stop's cause the agent does not know is refused, not taken for another (the app sends a newer cause only to an agent that names its feature)", () => {
    expect(methods.stop.params.safeParse({ id: "alpha", cause: "some-later-cause" }).success).toBe(false);
    expect(methods.stop.params.parse({ id: "alpha", cause: "restart" })).toEqual({ id: "alpha", cause: "restart" });
  });
});
