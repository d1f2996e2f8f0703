import { describe, expect, it, vi } from "vitest";

describe("ServiceError", () => {
  it("is recognised across separately loaded copies of its module (Next bundles routes separately)", async () => {
    const a = await import("./errors");
    vi.resetModules();
    const b = await import("./errors");
    expect(a.ServiceError).not.toBe(b.ServiceError);
    const err = new a.ServiceError("NOT_FOUND", "no such model");
    expect(err).toBeInstanceOf(b.ServiceError);
    expect(err).toBeInstanceOf(Error);
    expect(new Error("plain")).not.toBeInstanceOf(b.ServiceError);
    expect({ code: "NOT_FOUND" }).not.toBeInstanceOf(b.ServiceError);
  });

  it("lists every field problem in its message", async () => {
    const { ServiceError } = await import("./errors");
    const err = ServiceError.invalid([
      { path: "port", message: "must be between 1024 and 65535" },
      { path: "name", message: "is already taken" },
    ]);
    expect(err.code).toBe("BAD_REQUEST");
    expect(err.message).toBe("port: must be between 1024 and 65535; name: is already taken");
  });
});
