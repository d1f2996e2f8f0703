/**
 * The Docker files' contract, checked without a Docker engine (this machine
 * has none): what docker-compose.yml and the Dockerfile promise the app, and
 * what the app needs from them. The production-mode tests run the same
 * command in the same file layout (test/harness/app-build.ts), so "the image
 * starts" is tested there; this file checks that the image IS that.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { envSchema, parseEnv } from "../src/server/env";
import { defaultHostData } from "../src/server/services/registry/hosts";
import { BUILD_CONTEXT_EXCLUDES, IMAGE_LAYOUT, REPO_ROOT, START_COMMAND } from "./harness/app-build";
import {
  composeDurationMs,
  composeVariables,
  copyArgs,
  envPairs,
  jsonCommand,
  loadCompose,
  parsePort,
  parseVolume,
  readDockerfile,
  type DockerStage,
} from "./harness/docker-files";

const APP_ENV_KEYS = new Set(Object.keys(envSchema.shape));
/** Proposed in src/server/env.ts (see the compose file): where the published port really listens. */
const PUBLISH_KEY = "SYNAPSE_PUBLISH_ADDRESS";
const publishKeyKnown = APP_ENV_KEYS.has(PUBLISH_KEY);
/** Variables the image sets for Node/Next rather than for the app's schema. */
const RUNTIME_ONLY_ENV = new Set(["NODE_ENV", "NEXT_TELEMETRY_DISABLED"]);

function shutdownDeadlineMs(): number {
  const boot = readFileSync(path.join(REPO_ROOT, "src", "server", "boot.ts"), "utf8");
  const m = /SHUTDOWN_DEADLINE_MS\s*=\s*([\d_]+)/.exec(boot);
  if (!m) throw new Error("src/server/boot.ts no longer declares SHUTDOWN_DEADLINE_MS = <ms>; update this test");
  return Number(m[1]!.replace(/_/g, ""));
}

const dockerfile = readDockerfile();
const stage = (name: string): DockerStage => {
  const s = dockerfile.stages.find((x) => x.name === name);
  if (!s) throw new Error(`Dockerfile has no stage ${name}`);
  return s;
};
const ops = (s: DockerStage, op: string) => s.instructions.filter((i) => i.op === op);
const runtime = dockerfile.stages.at(-1)!;
const imageEnv = Object.assign({}, ...ops(runtime, "ENV").map((i) => envPairs(i.args))) as Record<string, string>;
/** A stage's working folder, inherited from the stage it starts FROM. */
const workdir = (s: DockerStage): string => {
  const own = ops(s, "WORKDIR").at(-1)?.args;
  if (own) return own;
  const parent = dockerfile.stages.find((x) => x.name === s.from);
  return parent ? workdir(parent) : "/";
};

describe("Dockerfile", () => {
  it("is multi-stage: deps → build → runtime on a slim Node image", () => {
    expect(dockerfile.stages.map((s) => s.name)).toEqual(expect.arrayContaining(["deps", "build", "runtime"]));
    expect(runtime.name).toBe("runtime");
    expect(runtime.from).toMatch(/^node:\$\{NODE_VERSION\}-bookworm-slim$|^node:\d+[\w.-]*-slim$/);
    expect(ops(stage("deps"), "RUN").some((r) => /\bnpm ci\b/.test(r.args))).toBe(true);
    expect(stage("build").from).toBe("deps");
    expect(ops(stage("build"), "RUN").some((r) => /\bnpm run build\b/.test(r.args))).toBe(true);
  });

  it("runs the command the production-mode tests run", () => {
    const cmds = ops(runtime, "CMD");
    expect(cmds).toHaveLength(1);
    expect(jsonCommand(cmds[0]!.args)).toEqual([...START_COMMAND]);
    expect(ops(runtime, "ENTRYPOINT")).toHaveLength(0);
    expect(workdir(runtime)).toBe("/app");
  });

  it("holds exactly the runtime parts the tests assemble (IMAGE_LAYOUT), copied from the build stage", () => {
    const buildDir = workdir(stage("build"));
    const copies = ops(runtime, "COPY")
      .map((c) => copyArgs(c.args))
      .filter((c) => c.from === "build");
    const seen = copies.map((c) => ({ from: path.posix.relative(buildDir, c.sources[0]!), to: path.posix.relative("/app", path.posix.resolve("/app", c.dest)) || "." }));
    expect(seen.sort((a, b) => a.from.localeCompare(b.from))).toEqual(IMAGE_LAYOUT.map(({ from, to }) => ({ from, to })).sort((a, b) => a.from.localeCompare(b.from)));
    for (const c of copies) expect(c.chown).toBe("node:node");
  });

  it("ships the gateway's compiled front path where the start command loads it, and its worker thread beside it, built by `npm run build`", () => {
    const part = IMAGE_LAYOUT.find((p) => p.from === "dist/gateway");
    expect(part?.to).toBe("gateway");
    const start = readFileSync(path.join(REPO_ROOT, "scripts", "start.mjs"), "utf8");
    // In the image, start.mjs loads <root>/gateway/front.mjs; the build writes dist/gateway/front.mjs.
    expect(start).toMatch(/path\.join\(root, "gateway", "front\.mjs"\)/);
    const build = readFileSync(path.join(REPO_ROOT, "scripts", "build-gateway.mjs"), "utf8");
    expect(build).toContain('path.join("dist", "gateway", "front.mjs")');
    // front.mjs starts the worker from the file beside it (the whole dist/gateway folder is the image's gateway folder).
    expect(build).toContain('path.join("dist", "gateway", "worker.mjs")');
    expect(readFileSync(path.join(REPO_ROOT, "src", "server", "gateway", "front.ts"), "utf8")).toContain('new URL("./worker.mjs", import.meta.url)');
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
    expect(pkg.scripts.build).toContain("scripts/build-gateway.mjs");
  });

  it("runs as a non-root user with the database in the /app/data volume", () => {
    const user = ops(runtime, "USER").at(-1)?.args;
    expect(user).toBeDefined();
    expect(["root", "0", "0:0"]).not.toContain(user);
    expect(jsonCommand(ops(runtime, "VOLUME")[0]?.args ?? "[]")).toEqual(["/app/data"]);
    expect(imageEnv.DATABASE_URL).toBe("file:/app/data/synapse.db");
    expect(imageEnv.SYNAPSE_STATE_DIR?.startsWith("/app/data/")).toBe(true);
  });

  it("listens on every interface of the container on the port it exposes", () => {
    expect(imageEnv.HOSTNAME).toBe("0.0.0.0");
    expect(ops(runtime, "EXPOSE").map((e) => e.args)).toEqual([imageEnv.PORT]);
  });

  it("sets only variables the app knows (src/server/env.ts) or Node/Next read", () => {
    for (const key of Object.keys(imageEnv)) expect(APP_ENV_KEYS.has(key) || RUNTIME_ONLY_ENV.has(key), `${key} is not in src/server/env.ts`).toBe(true);
  });

  it("stops on SIGTERM and checks /api/health with node (no curl in the image)", () => {
    expect(ops(runtime, "STOPSIGNAL").map((s) => s.args)).toEqual(["SIGTERM"]);
    const hc = ops(runtime, "HEALTHCHECK");
    expect(hc).toHaveLength(1);
    const cmd = jsonCommand(hc[0]!.args.replace(/^(--\S+\s+)*CMD\s+/, ""));
    expect(cmd?.[0]).toBe("node");
    expect(cmd?.join(" ")).toContain("/api/health");
    expect(cmd?.join(" ")).toMatch(/127\.0\.0\.1/);
    expect(hc[0]!.args).not.toMatch(/\b(curl|wget)\b/);
  });

  it("carries a CPU llama-server for USE_EXTERNAL_SERVERS=false, built by the tests' own script (opt-out: LLAMA_SERVER=none)", () => {
    expect(dockerfile.globalArgs.LLAMA_SERVER).toBe("cpu");
    expect(stage("llama").from).toBe("llama-${LLAMA_SERVER}");
    for (const variant of ["cpu", "none"]) expect(dockerfile.stages.some((s) => s.name === `llama-${variant}`)).toBe(true);
    expect(ops(stage("llama-cpu"), "RUN").some((r) => r.args.includes("build-llama-server.sh"))).toBe(true);
    const bin = imageEnv.LLAMA_SERVER_BIN!;
    const fromLlama = ops(runtime, "COPY")
      .map((c) => copyArgs(c.args))
      .filter((c) => c.from === "llama");
    expect(fromLlama.some((c) => bin.startsWith(`${c.dest.replace(/\/$/, "")}/`))).toBe(true);
  });
});

describe(".dockerignore", () => {
  const patterns = readFileSync(path.join(REPO_ROOT, ".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const ignored = (name: string) =>
    patterns.some((p) => {
      const re = new RegExp(`^${p.replace(/^\*\*\//, "").replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*")}$`);
      return re.test(name);
    });

  it("keeps secrets and local state out of the build context (the SSH key, the token, the database)", () => {
    for (const name of ["host-api", ".env", ".env.local", "data", ".git", "node_modules", "src/generated"]) expect(ignored(name), name).toBe(true);
  });

  it("excludes at least what the tests' build copy excludes", () => {
    for (const name of BUILD_CONTEXT_EXCLUDES) expect(ignored(name), name).toBe(true);
  });
});

describe("docker-compose.yml", () => {
  const compose = loadCompose();
  const svc = compose.services.synapse!;
  const env = svc.environment;

  it("has the app service, built from this Dockerfile", () => {
    expect(Object.keys(compose.services)).toEqual(["synapse"]);
    expect(svc.raw.build).toMatchObject({ context: ".", dockerfile: "Dockerfile" });
    expect(svc.raw.init).toBe("true");
  });

  it("publishes the app's port on loopback by default, from one variable that also tells the app", () => {
    expect(svc.ports).toHaveLength(1);
    const port = parsePort(svc.ports[0]!);
    expect(port).toEqual({ ip: "127.0.0.1", host: "3000", container: env.PORT });
    expect(env.PORT).toBe(imageEnv.PORT);
    expect(env.HOSTNAME).toBe("0.0.0.0");
    expect(env[PUBLISH_KEY]).toBe(port.ip);
    const lan = loadCompose({ SYNAPSE_BIND: "0.0.0.0", SYNAPSE_PORT: "8080" }).services.synapse!;
    expect(parsePort(lan.ports[0]!)).toMatchObject({ ip: "0.0.0.0", host: "8080" });
    expect(lan.environment[PUBLISH_KEY]).toBe("0.0.0.0");
  });

  it("sets only variables the app knows (src/server/env.ts)", () => {
    for (const key of Object.keys(env)) {
      if (key === PUBLISH_KEY && !publishKeyKnown) continue; // pending in src/server/env.ts; checked below once it lands
      expect(APP_ENV_KEYS.has(key), `${key} is not in src/server/env.ts`).toBe(true);
    }
  });

  it("keeps the database (and the local agent's state) in a named volume at the image's /app/data", () => {
    const data = svc.volumes.map(parseVolume).find((v) => v.target === "/app/data");
    expect(data).toBeDefined();
    expect(compose.namedVolumes).toContain(data!.source);
    expect(env.DATABASE_URL).toBe("file:/app/data/synapse.db");
    expect(env.SYNAPSE_STATE_DIR?.startsWith("/app/data/")).toBe(true);
  });

  it("USE_EXTERNAL_SERVERS: off by default (CPU in the container), on with the variable; the ssh folder mounted read-only where SYNAPSE_SSH_DIR says", () => {
    expect(env.USE_EXTERNAL_SERVERS).toBe("false");
    expect(loadCompose({ USE_EXTERNAL_SERVERS: "true" }).services.synapse!.environment.USE_EXTERNAL_SERVERS).toBe("true");
    const ssh = svc.volumes.map(parseVolume).find((v) => v.target === env.SYNAPSE_SSH_DIR);
    expect(ssh).toEqual({ source: "./host-api/.ssh", target: "/app/host-api/.ssh", readOnly: true });
    expect(env.SYNAPSE_SSH_HOST_ALIAS).toBe("mac-host");
    expect(env.LLAMA_SERVER_BIN).toBe(imageEnv.LLAMA_SERVER_BIN);
  });

  it("mounts the model folder (PRAXIS_MODEL_PATH) read-only at the registry's /models", () => {
    const models = svc.volumes.map(parseVolume).find((v) => v.target === "/models");
    expect(models).toMatchObject({ readOnly: true });
    expect(env.SYNAPSE_REGISTRY_MODELS_ROOT).toBe("/models");
    expect(env.SYNAPSE_MODEL_ROOTS).toBe("/models");
    const mac = loadCompose({ PRAXIS_MODEL_PATH: "/Users/me/models" }).services.synapse!;
    expect(mac.volumes.map(parseVolume).find((v) => v.target === "/models")?.source).toBe("/Users/me/models");
    expect(mac.environment.PRAXIS_MODEL_PATH).toBe("/Users/me/models");
  });

  it("resolves host.docker.internal on Linux too", () => {
    expect(svc.extraHosts).toContain("host.docker.internal:host-gateway");
  });

  it("waits on stop longer than the app's own shutdown deadline (it stops every server first)", () => {
    const grace = composeDurationMs(String(svc.raw.stop_grace_period));
    expect(grace).toBeGreaterThanOrEqual(shutdownDeadlineMs() + 10_000);
    expect(svc.raw.stop_signal ?? "SIGTERM").toBe("SIGTERM");
  });

  it("checks health on /api/health with node, on the container's port", () => {
    const hc = svc.raw.healthcheck as Record<string, unknown>;
    const test = hc.test as string[];
    expect(test.slice(0, 2)).toEqual(["CMD", "node"]);
    expect(test.join(" ")).toContain(`http://127.0.0.1:${env.PORT}/api/health`);
    expect(composeDurationMs(String(hc.start_period))).toBeGreaterThan(0);
  });

  it("documents every variable it reads in the README's Docker section", () => {
    const readme = readFileSync(path.join(REPO_ROOT, "README.md"), "utf8");
    const start = readme.indexOf("## Docker + Metal");
    expect(start, "README has a '## Docker + Metal' section").toBeGreaterThan(-1);
    const section = readme.slice(start, readme.indexOf("\n## ", start + 1) === -1 ? undefined : readme.indexOf("\n## ", start + 1));
    for (const v of composeVariables(compose.source)) expect(section, `${v} in README "Docker + Metal"`).toContain(v);
  });

  describe.skipIf(!publishKeyKnown)(`the app accepts the compose environment (needs ${PUBLISH_KEY} in src/server/env.ts)`, () => {
    const appEnv = (vars: Record<string, string>) => ({ ...imageEnv, ...loadCompose(vars).services.synapse!.environment });

    it("by default (loopback, no token) and for Metal over SSH", () => {
      expect(() => parseEnv(appEnv({}))).not.toThrow();
      const metal = parseEnv(appEnv({ USE_EXTERNAL_SERVERS: "true", PRAXIS_MODEL_PATH: "/Users/me/models" }));
      expect(metal).toMatchObject({ USE_EXTERNAL_SERVERS: true, SYNAPSE_SSH_DIR: "/app/host-api/.ssh", PRAXIS_MODEL_PATH: "/Users/me/models" });
    });

    it("published beyond loopback only with a token", () => {
      expect(() => parseEnv(appEnv({ SYNAPSE_BIND: "0.0.0.0" }))).toThrow(/SYNAPSE_API_TOKEN/);
      expect(() => parseEnv(appEnv({ SYNAPSE_BIND: "0.0.0.0", SYNAPSE_API_TOKEN: "a-token-of-24-characters" }))).not.toThrow();
    });

    it("CPU in the container with PRAXIS_MODEL_PATH set: the local host reads the models where they are mounted, not at the Docker host's path", () => {
      const vars = { PRAXIS_MODEL_PATH: "/Users/me/models" };
      const mount = loadCompose(vars).services.synapse!.volumes.map(parseVolume).find((v) => v.source === "/Users/me/models");
      expect(defaultHostData(parseEnv(appEnv(vars)))).toMatchObject({ linkKind: "local", registryModelsRoot: "/models", hostModelsRoot: mount?.target });
    });
  });
});
