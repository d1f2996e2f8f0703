import { describe, expect, it } from "vitest";
import { backendBadgeText, warnsNotUsingMetal } from "./backend-badge";

/** What a user reads of the badge: its words, what a screen reader adds, and its tooltip. */
const read = (b: ReturnType<typeof backendBadgeText>) => [b.text, b.spoken, b.title].filter(Boolean).join(" ");

describe("the backend badge of a CPU server", () => {
  it("on Linux says CPU, without Metal", () => {
    const b = backendBadgeText("CPU", true, "linux");
    expect(b.text).toBe("CPU");
    expect(read(b)).not.toMatch(/metal/i);
    expect(b.tone).toBe("ok");
  });

  it("on macOS warns that Metal is not used, and what to check", () => {
    const b = backendBadgeText("CPU", true, "darwin");
    expect(b).toMatchObject({ text: "CPU only", spoken: "(not using Metal)", tone: "warn" });
    expect(b.title).toMatch(/built with Metal.*GPU layers/);
  });

  it("before the host's platform is known, names no Metal", () => {
    const b = backendBadgeText("CPU", true, null);
    expect(read(b)).not.toMatch(/metal/i);
  });

  it("says a GPU backend as the server reported it, on any platform", () => {
    expect(backendBadgeText("CUDA", true, "linux")).toMatchObject({ text: "CUDA", tone: "ok" });
    expect(backendBadgeText("Metal", true, "darwin")).toMatchObject({ text: "Metal", tone: "ok" });
    expect(backendBadgeText(null, false, "linux")).toMatchObject({ text: "GPU: unknown", tone: "idle" });
  });
});

describe("the model page's 'Not using Metal' notice", () => {
  it("shows for a CPU server on macOS only, or over ssh while the platform is unknown", () => {
    expect(warnsNotUsingMetal("CPU", "darwin", "ssh")).toBe(true);
    expect(warnsNotUsingMetal("CPU", "linux", "ssh")).toBe(false);
    expect(warnsNotUsingMetal("CPU", "linux", "local")).toBe(false);
    expect(warnsNotUsingMetal("CPU", null, "ssh")).toBe(true);
    expect(warnsNotUsingMetal("CPU", null, "local")).toBe(false);
    expect(warnsNotUsingMetal("Metal", "darwin", "ssh")).toBe(false);
  });
});
