/**
 * The agent object without running any server: request validation (bad specs
 * are rejected naming the field and spawn nothing), apply, discover, logs.
 * The binary is a stand-in that records every run, so "nothing spawned" is
 * checked, not assumed.
 */
import { existsSync } from "node:fs";
import net from "node:net";
import { mkdir, readFile, readdir, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentOptions, AgentPool, specFor, testDirs, type TestDirs } from "../test/harness/fixtures.ts";
import { freePort } from "../test/harness/ports.ts";
import { standIns } from "../test/harness/stand-ins/index.ts";
import { tinyModel } from "../test/harness/tiny-model.ts";
import { AgentError, type ServerSpecInput } from "./protocol.ts";
import type { HostAgent } from "./agent.ts";

let dirs: TestDirs;
let agent: HostAgent;
let model: string;
let marker: string;
const pool = new AgentPool();

beforeAll(async () => {
  dirs = await testDirs();
  model = await tinyModel(dirs.modelRoot);
  marker = path.join(dirs.root, "spawned.txt");
  process.env.STAND_IN_SPAWN_MARKER = marker;
  // Servers get a minimal environment: the marker's path is handed to them explicitly (the --version/--help run inherits it).
  agent = pool.make(agentOptions(dirs, standIns.recordsSpawn, { serverEnv: { STAND_IN_SPAWN_MARKER: marker } }));
  await mkdir(path.join(dirs.modelRoot, "dir.gguf"));
  await writeFile(path.join(dirs.modelRoot, "notes.txt"), "x");
  await writeFile(path.join(dirs.root, "outside.gguf"), "x");
});
afterAll(async () => {
  await pool.stopEverything();
  delete process.env.STAND_IN_SPAWN_MARKER;
  await dirs.cleanup();
});

async function rejectionOf(p: Promise<unknown>): Promise<AgentError> {
  try {
    await p;
  } catch (e) {
    return e as AgentError;
  }
  throw new Error("expected a rejection");
}

describe("bad specs are rejected naming the field, and nothing is spawned", () => {
  const port = 40000 + (process.pid % 20000);
  const big = "a".repeat(100 * 1024);
  const cases: [string, () => ServerSpecInput | Record<string, unknown>, string, RegExp][] = [
    ["path outside the roots", () => specFor("s1", path.join(dirs.root, "outside.gguf"), port), "spec.modelPath", /outside the model roots/],
    ["a '..' path", () => specFor("s1", `${dirs.modelRoot}/../outside.gguf`, port), "spec.modelPath", /'\.\.'/],
    ["not .gguf", () => specFor("s1", path.join(dirs.modelRoot, "notes.txt"), port), "spec.modelPath", /\.gguf/],
    ["a missing file", () => specFor("s1", path.join(dirs.modelRoot, "missing.gguf"), port), "spec.modelPath", /does not exist/],
    ["a directory", () => specFor("s1", path.join(dirs.modelRoot, "dir.gguf"), port), "spec.modelPath", /not a regular file/],
    ["port 0", () => specFor("s1", model, 0), "spec.port", /between 1024 and 65535/],
    ["port 70000", () => specFor("s1", model, 70000), "spec.port", /between 1024 and 65535/],
    ["a fractional port", () => specFor("s1", model, 8080.5), "spec.port", /integer/],
    ["a string port", () => ({ ...specFor("s1", model, port), port: "8080" }), "spec.port", /number/],
    ["an unknown flag", () => specFor("s1", model, port, { extraFlags: [{ flag: "--exec" as never, value: "x" }] }), "spec.extraFlags.0.flag", /not allowed/],
    ["a --pooling value llama-server refuses", () => specFor("s1", model, port, { extraFlags: [{ flag: "--pooling", value: "nonsense" }] }), "spec.extraFlags.0.value", /--pooling does not take "nonsense"; it takes none, mean, cls, last or rank/],
    ["a flag with its own field", () => specFor("s1", model, port, { extraFlags: [{ flag: "--threads" as never, value: "2" }] }), "spec.extraFlags.0.flag", /--threads has its own field: set "Threads"/],
    ["a 100 KB model path", () => specFor("s1", `/${big}.gguf`, port), "spec.modelPath", /at most 1024 characters/],
    ["a 100 KB alias", () => specFor("s1", model, port, { alias: big }), "spec.alias", /at most 128 characters/],
    ["a 100 KB id", () => specFor(big, model, port), "spec.id", /at most 64 characters/],
    ["an unknown field", () => ({ ...specFor("s1", model, port), shell: "rm -rf /" }), "spec", /shell/],
  ];
  it.each(cases)("%s", async (_name, makeSpec, field, message) => {
    const err = await rejectionOf(agent.call("start", { spec: makeSpec() as ServerSpecInput }));
    expect(err).toBeInstanceOf(AgentError);
    expect(err.code).toBe("BAD_REQUEST");
    expect(err.issues?.map((i) => i.path)).toContain(field);
    expect(err.message).toContain(field);
    expect(err.message).toMatch(message);
    expect(err.message.length).toBeLessThan(2000);
    expect(existsSync(marker)).toBe(false);
    expect(await readdir(path.join(dirs.stateDir, "servers")).catch(() => [])).toEqual([]);
    expect(existsSync(path.join(dirs.stateDir, "logs", "s1.log"))).toBe(false);
    expect(await agent.call("status", {})).toEqual([]);
  });

  it("several things wrong at once: the model is reported first, and neither the port's holder nor the binary is touched", async () => {
    const held = net.createServer();
    await new Promise<void>((resolve) => held.listen(0, "127.0.0.1", resolve));
    try {
      const heldPort = (held.address() as net.AddressInfo).port;
      const missing = path.join(dirs.modelRoot, "missing.gguf");
      const err = await rejectionOf(agent.call("start", { spec: specFor("s2", missing, heldPort) }));
      expect(err.code).toBe("BAD_REQUEST");
      expect(err.issues?.map((i) => i.path)).toEqual(["spec.modelPath"]);
      // The port check ran alongside, but a bad model wins; and the binary was not run (--help / --version).
      expect(existsSync(marker)).toBe(false);
      // With the model fixed, the port is what is wrong.
      const conflict = await rejectionOf(agent.call("start", { spec: specFor("s2", model, heldPort) }));
      expect(conflict.code).toBe("CONFLICT");
      expect(conflict.message).toContain(String(heldPort));
      expect(existsSync(marker)).toBe(false);
      expect(await agent.call("status", {})).toEqual([]);
    } finally {
      await new Promise((resolve) => held.close(resolve));
    }
  });

  it("makes its state folder (logs/, servers/) when it starts, not at the first server's start", async () => {
    await agent.ready;
    expect((await readdir(dirs.stateDir)).sort()).toEqual(expect.arrayContaining(["logs", "servers"]));
  });

  it("rejects an unknown method", async () => {
    const err = await rejectionOf(agent.call("exec" as "status", {}));
    expect(err.code).toBe("BAD_REQUEST");
  });
});

describe("apply, status, logs", () => {
  it("persists the desired set atomically and refuses duplicates", async () => {
    const p1 = await freePort();
    const specs = [specFor("a", model, p1), specFor("b", model, p1 + 1)];
    expect(await agent.call("apply", { specs })).toEqual({ count: 2 });
    const file = JSON.parse(await readFile(path.join(dirs.stateDir, "desired.json"), "utf8")) as { specs: { id: string; bindAddress: string }[] };
    expect(file.specs.map((s) => s.id)).toEqual(["a", "b"]);
    expect(file.specs[0]?.bindAddress).toBe("127.0.0.1");
    expect((await agent.desired()).map((s) => s.id)).toEqual(["a", "b"]);
    const dup = await rejectionOf(agent.call("apply", { specs: [specFor("a", model, p1), specFor("a", model, p1 + 1)] }));
    expect(dup.issues?.[0]?.path).toBe("specs.1.id");
    const dupPort = await rejectionOf(agent.call("apply", { specs: [specFor("a", model, p1), specFor("b", model, p1)] }));
    expect(dupPort.issues?.[0]?.path).toBe("specs.1.port");
    expect(existsSync(marker)).toBe(false);
  });

  it("answers NOT_FOUND for the log of an unknown server, and stop is idempotent", async () => {
    expect((await rejectionOf(agent.call("logs", { id: "nobody" }))).code).toBe("NOT_FOUND");
    expect((await agent.call("stop", { id: "nobody" })).state).toBe("stopped");
  });

  it("honours a caller's deadline", async () => {
    const err = await rejectionOf(agent.call("status", {}, { signal: AbortSignal.abort() }));
    expect(err.code).toBe("TIMEOUT");
  });
});

describe("discover", () => {
  it("finds .gguf files in the roots, including the Hugging Face cache layout", async () => {
    const hf = path.join(dirs.modelRoot, "hub", "models--org--tiny");
    await mkdir(path.join(hf, "blobs"), { recursive: true });
    await mkdir(path.join(hf, "snapshots", "abc123"), { recursive: true });
    await tinyModel(path.join(hf, "blobs"), "0123456789abcdef", { name: "hf-tiny" });
    await symlink("../../blobs/0123456789abcdef", path.join(hf, "snapshots", "abc123", "tiny-f32.gguf"));
    await writeFile(path.join(dirs.modelRoot, "broken.gguf"), "not a model");

    const found = await agent.call("discover", {});
    const byName = new Map(found.map((f) => [path.basename(f.path), f]));
    expect(byName.get("tiny.gguf")).toMatchObject({ architecture: "llama", name: "synapse-tiny", parameterCount: 115_520, quantization: "F32", contextLength: 256, error: null });
    expect(byName.get("tiny-f32.gguf")).toMatchObject({ architecture: "llama", name: "hf-tiny", error: null });
    expect(byName.get("tiny-f32.gguf")?.sizeBytes).toBeGreaterThan(400_000);
    expect(byName.get("broken.gguf")?.error).toMatch(/not a GGUF file/);
    expect(byName.has("dir.gguf")).toBe(false);
    expect(byName.has("0123456789abcdef")).toBe(false);
    expect(existsSync(marker)).toBe(false);
  });
});
