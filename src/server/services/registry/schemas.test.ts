import { describe, expect, it } from "vitest";
import { hostUpdateInput, hostUpsertInput, importInput, modelCreateInput, modelUpdateInput, settingsUpdateInput } from "./schemas";

const paths = (r: { success: boolean; error?: { issues: { path: PropertyKey[] }[] } }) => (r.error?.issues ?? []).map((i) => i.path.join(".")).sort();

describe("input schemas", () => {
  it("modelCreateInput: nulls by default (use the global defaults), disabled, no extra flags", () => {
    expect(modelCreateInput.parse({ name: "m", filePath: "/m/m.gguf", port: 8080 })).toMatchObject({ enabled: false, ctxSize: null, gpuLayers: null, flashAttn: null, extraFlags: [] });
    expect(paths(modelCreateInput.safeParse({}))).toEqual(["filePath", "name", "port"]);
  });

  it("modelUpdateInput: only id is required; given fields are checked; no defaults are filled in", () => {
    expect(modelUpdateInput.parse({ id: "x" })).toEqual({ id: "x" });
    expect(modelUpdateInput.parse({ id: "x", ctxSize: null })).toEqual({ id: "x", ctxSize: null });
    expect(paths(modelUpdateInput.safeParse({ id: "x", port: 22, threads: 2000 }))).toEqual(["port", "threads"]);
  });

  it("a number given as text says what number: a unit reads 'a number of milliseconds', a note stays in parentheses", () => {
    const messages = (input: object) => modelUpdateInput.safeParse({ id: "x", ...input }).error!.issues.map((i) => i.message);
    expect(messages({ idleTimeoutMs: "30s" })).toEqual(["must be a number of milliseconds"]);
    expect(messages({ ctxSize: "big" })).toEqual(["must be a number (0 = the model's trained context length)"]);
  });

  it("hostUpsertInput: ssh needs an address; fingerprints look like ssh-keygen's", () => {
    expect(hostUpsertInput.parse({ name: "local" })).toMatchObject({ linkKind: "local", sshPort: 22 });
    expect(paths(hostUpsertInput.safeParse({ name: "m", linkKind: "ssh", hostKeyFingerprint: "SHA256:short" }))).toEqual(["hostKeyFingerprint", "sshHost"]);
    expect(hostUpsertInput.safeParse({ name: "m", linkKind: "ssh", sshHost: "mac-host", hostKeyFingerprint: `SHA256:${"A".repeat(43)}` }).success).toBe(true);
  });

  it("hostUpdateInput: only id is required; given fields are checked; no defaults are filled in", () => {
    expect(hostUpdateInput.parse({ id: "x" })).toEqual({ id: "x" });
    expect(hostUpdateInput.parse({ id: "x", modelPorts: "8080-8099", sshUser: null })).toEqual({ id: "x", modelPorts: "8080-8099", sshUser: null });
    expect(paths(hostUpdateInput.safeParse({ id: "x", sshPort: 0, linkKind: "telnet", name: null }))).toEqual(["linkKind", "name", "sshPort"]);
  });

  it("settingsUpdateInput: partial and bounded; importInput needs at least one file", () => {
    expect(settingsUpdateInput.parse({})).toEqual({});
    expect(paths(settingsUpdateInput.safeParse({ gpuLayers: 1000, readinessDeadlineMs: 50, extra: 1 }))).toEqual(["", "gpuLayers", "readinessDeadlineMs"]);
    expect(paths(importInput.safeParse({}))).toEqual(["registry"]);
    expect(importInput.safeParse({ registry: { models: {} } }).success).toBe(true);
  });
});

describe("update inputs: keys they do not take", () => {
  it("a read's read-only fields sent back are named as read-only; other unknown keys as not taken", () => {
    const r = hostUpdateInput.safeParse({ id: "h1", name: "mac", createdAt: "x", updatedAt: "y", colour: "red" });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.message)).toEqual(["createdAt, updatedAt are read-only (a read returns them); leave them out; colour: not a field hosts.update takes"]);
    const m = modelUpdateInput.safeParse({ id: "m1", architecture: "llama" });
    expect(m.error!.issues.map((i) => i.message)).toEqual(["architecture is read-only (a read returns it); leave it out"]);
  });
});
