import { describe, expect, it } from "vitest";
import { ServiceError } from "../errors";
import { toHostPath, toRegistryPath } from "./paths";

const mapped = { name: "mac", registryModelsRoot: "/models", hostModelsRoot: "/Users/me/llm-models/" };
const plain = { name: "local", registryModelsRoot: null, hostModelsRoot: null };

function issueOf(fn: () => unknown): { code: string; path: string; message: string } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ServiceError);
    const err = e as ServiceError;
    return { code: err.code, path: err.issues?.[0]?.path ?? "", message: err.message };
  }
  throw new Error("expected a ServiceError");
}

describe("toHostPath / toRegistryPath", () => {
  it("maps the registry root to the host root and back", () => {
    expect(toHostPath(mapped, "/models/qwen/q.gguf")).toBe("/Users/me/llm-models/qwen/q.gguf");
    expect(toHostPath(mapped, "/models")).toBe("/Users/me/llm-models");
    expect(toRegistryPath(mapped, "/Users/me/llm-models/qwen/q.gguf")).toBe("/models/qwen/q.gguf");
    expect(toRegistryPath(mapped, toHostPath(mapped, "/models/a//b/./c.gguf"))).toBe("/models/a/b/c.gguf");
  });
  it("does not map a sibling that merely shares the prefix", () => {
    expect(toHostPath(mapped, "/models-old/x.gguf")).toBe("/models-old/x.gguf");
    expect(toRegistryPath(mapped, "/Users/me/llm-models2/x.gguf")).toBe("/Users/me/llm-models2/x.gguf");
  });
  it("passes absolute paths outside the root through unchanged", () => {
    expect(toHostPath(mapped, "/opt/other/x.gguf")).toBe("/opt/other/x.gguf");
    expect(toHostPath(plain, "/opt/other/x.gguf")).toBe("/opt/other/x.gguf");
    expect(toRegistryPath(plain, "/opt/other/x.gguf")).toBe("/opt/other/x.gguf");
  });
  it.each([
    ["relative", "models/x.gguf", /must be an absolute path/],
    ["..", "/models/../etc/x.gguf", /'\.\.'/],
    ["empty", "", /must not be empty/],
  ])("rejects a %s path naming the field", (_n, p, msg) => {
    for (const host of [mapped, plain]) {
      const i = issueOf(() => toHostPath(host, p));
      expect(i).toMatchObject({ code: "BAD_REQUEST", path: "filePath" });
      expect(i.message).toMatch(msg);
      expect(issueOf(() => toRegistryPath(host, p)).path).toBe("path");
    }
  });
  it("rejects a half-configured mapping, naming the missing side", () => {
    const i = issueOf(() => toHostPath({ name: "h", registryModelsRoot: "/models", hostModelsRoot: null }, "/models/x.gguf"));
    expect(i.path).toBe("hostModelsRoot");
    expect(i.message).toMatch(/set both registryModelsRoot and hostModelsRoot/);
    expect(issueOf(() => toHostPath({ name: "h", registryModelsRoot: "models", hostModelsRoot: "/x" }, "/models/x.gguf")).path).toBe("registryModelsRoot");
  });
});
