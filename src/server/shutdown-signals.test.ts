import { describe, expect, it } from "vitest";
import { judgeSignal } from "./shutdown-signals";

describe("judgeSignal: one Ctrl-C under npm reads as one", () => {
  const first = { signal: "SIGINT" as const, atMs: 10_000 };
  it("the first signal stops the servers", () => {
    expect(judgeSignal(null, "SIGINT", 10_000)).toBe("stop");
  });
  it("the same signal within 500 ms (the terminal's and npm's copy of one Ctrl-C) is that signal, not a repeat", () => {
    expect(judgeSignal(first, "SIGINT", 10_003)).toBe("same");
    expect(judgeSignal(first, "SIGINT", 10_499)).toBe("same");
  });
  it("a repeat later than that, or of another kind, is logged and ignored until 3 s into the stop", () => {
    expect(judgeSignal(first, "SIGINT", 10_500)).toBe("ignored");
    expect(judgeSignal(first, "SIGTERM", 10_010)).toBe("ignored");
    expect(judgeSignal(first, "SIGINT", 12_999)).toBe("ignored");
  });
  it("a later Ctrl-C under npm, delivered twice too, is one press: its copy is judged against the signal before it", () => {
    const second = { signal: "SIGINT" as const, atMs: 14_500 };
    expect(judgeSignal(first, "SIGINT", 14_500)).toBe("exit");
    expect(judgeSignal(first, "SIGINT", 14_501, undefined, second)).toBe("same");
    expect(judgeSignal(first, "SIGINT", 15_200, undefined, second)).toBe("exit");
    expect(judgeSignal(first, "SIGTERM", 14_501, undefined, second)).toBe("exit");
  });
  it("a second signal 3 s or more into the stop exits at once", () => {
    expect(judgeSignal(first, "SIGINT", 13_000)).toBe("exit");
    expect(judgeSignal(first, "SIGTERM", 20_000)).toBe("exit");
  });
});
