import { describe, expect, it } from "vitest";
import { serverSpecSchema } from "../protocol.ts";
import { buildLaunch } from "./argv.ts";
import { parseCapabilities, parseVersion } from "./binary.ts";

const spec = serverSpecSchema.parse({
  id: "m1", modelPath: "/models/a.gguf", port: 8081, ctxSize: 4096, gpuLayers: 99, threads: 8, batchSize: 512, ubatchSize: 256,
  flashAttn: "on", loadMode: "no-mmap", parallel: 2, alias: "my model; rm -rf /", apiKey: "sk-secret", readinessDeadlineMs: 60_000, stopGraceMs: 10_000,
  extraFlags: [{ flag: "--metrics" }, { flag: "--seed", value: "42" }],
});

describe("buildLaunch", () => {
  it("builds modern flags: --load-mode and --flash-attn VALUE", () => {
    const { args, env } = buildLaunch(spec, "/real/a.gguf", { loadFlags: "load-mode", flashAttn: "value" });
    expect(args).toEqual([
      "--model", "/real/a.gguf", "--host", "127.0.0.1", "--port", "8081", "--ctx-size", "4096", "--n-gpu-layers", "99", "--threads", "8",
      "--batch-size", "512", "--ubatch-size", "256", "--parallel", "2", "--flash-attn", "on", "--load-mode", "none",
      "--alias", "my model; rm -rf /", "--metrics", "--seed", "42",
    ]);
    // The key never appears in argv (visible to every user in `ps`).
    expect(args.join(" ")).not.toContain("sk-secret");
    expect(env).toEqual({ LLAMA_API_KEY: "sk-secret" });
  });

  it("a spec without a thread count gives no --threads (llama-server counts the host's cores); -1 and counts as given", () => {
    const { threads: _t, ...auto } = spec;
    const caps = { loadFlags: "load-mode", flashAttn: "value" } as const;
    expect(buildLaunch(auto, "/a.gguf", caps).args).not.toContain("--threads");
    const all = buildLaunch({ ...spec, threads: -1 }, "/a.gguf", caps).args;
    expect(all.slice(all.indexOf("--threads"), all.indexOf("--threads") + 2)).toEqual(["--threads", "-1"]);
  });

  it("builds legacy flags: --no-mmap / --mlock and a bare -fa", () => {
    const legacy = { loadFlags: "legacy", flashAttn: "bare" } as const;
    expect(buildLaunch(spec, "/a.gguf", legacy).args).toEqual(expect.arrayContaining(["--no-mmap", "-fa"]));
    const mlock = buildLaunch({ ...spec, loadMode: "mlock", flashAttn: "off" }, "/a.gguf", legacy).args;
    expect(mlock).toContain("--mlock");
    expect(mlock).not.toContain("-fa");
    expect(mlock).not.toContain("--load-mode");
    const mmap = buildLaunch({ ...spec, loadMode: "mmap" }, "/a.gguf", legacy).args;
    expect(mmap.filter((a) => a.includes("mmap") || a.includes("mlock"))).toEqual([]);
    expect(buildLaunch({ ...spec, loadMode: "mlock" }, "/a.gguf", { loadFlags: "load-mode", flashAttn: "value" }).args.join(" ")).toContain("--load-mode mmap+mlock");
  });
});

describe("reading the installed llama-server", () => {
  it("detects modern and legacy flags from --help", () => {
    expect(parseCapabilities("-fa,   --flash-attn [on|off|auto]     set Flash Attention use\n-lm,   --load-mode MODE   model loading mode")).toEqual({ loadFlags: "load-mode", flashAttn: "value" });
    expect(parseCapabilities("-fa,   --flash-attn FA   set Flash Attention use ('on', 'off', or 'auto')\n--mlock\n--no-mmap")).toEqual({ loadFlags: "legacy", flashAttn: "value" });
    expect(parseCapabilities("-fa,   --flash-attn                     enable Flash Attention (default: disabled)\n--mlock   force system\n--no-mmap")).toEqual({ loadFlags: "legacy", flashAttn: "bare" });
    expect(parseCapabilities("--port PORT")).toEqual({ loadFlags: "legacy", flashAttn: "none" });
  });
  it("reads version and commit", () => {
    expect(parseVersion("version: 6123 (80fb11a)\nbuilt with cc")).toEqual({ version: "6123", commit: "80fb11a" });
    expect(parseVersion("version: 0.4.0-dev (build 1, commit 80fb11a)\nbuilt with GNU 12.2.0")).toEqual({ version: "0.4.0-dev", commit: "80fb11a" });
    expect(parseVersion("garbage")).toEqual({ version: null, commit: null });
  });

  it("turns llama.cpp's --fit off when the binary has it, so the server runs the settings the memory plan estimated", () => {
    const help = "-fa,   --flash-attn [on|off|auto]     set Flash Attention use\n-lm,   --load-mode MODE\n-fit,  --fit [on|off]                   whether to adjust unset arguments to fit in device memory";
    const caps = parseCapabilities(help);
    expect(caps).toEqual({ loadFlags: "load-mode", flashAttn: "value", fit: true });
    expect(buildLaunch(spec, "/a.gguf", caps).args.join(" ")).toContain("--fit off");
    expect(buildLaunch(spec, "/a.gguf", { loadFlags: "load-mode", flashAttn: "value" }).args).not.toContain("--fit");
  });

  it("passes a spec's cacheRamMiB as --cache-ram, and llama-server's default when absent", () => {
    const caps = { loadFlags: "load-mode", flashAttn: "value" } as const;
    expect(buildLaunch({ ...spec, cacheRamMiB: 512 }, "/a.gguf", caps).args.join(" ")).toContain("--cache-ram 512");
    expect(buildLaunch(spec, "/a.gguf", caps).args).not.toContain("--cache-ram");
  });
});

describe("--metrics", () => {
  it("is always given, once: the app reads every server's /metrics", () => {
    const without = buildLaunch({ ...spec, extraFlags: [{ flag: "--seed", value: "42" }] }, "/a.gguf", { loadFlags: "load-mode", flashAttn: "value" }).args;
    expect(without.slice(-3)).toEqual(["--seed", "42", "--metrics"]);
    const listed = buildLaunch(spec, "/a.gguf", { loadFlags: "load-mode", flashAttn: "value" }).args;
    expect(listed.filter((a) => a === "--metrics")).toHaveLength(1);
  });
});
