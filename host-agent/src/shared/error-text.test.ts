import { describe, expect, it } from "vitest";
import { errorHeadline, LOG_TAIL_MARK } from "./error-text.ts";

describe("errorHeadline", () => {
  it("gives a failure's reason without the mark that introduces the log lines below it", () => {
    expect(errorHeadline(`exited (crashed: killed by SIGKILL)${LOG_TAIL_MARK}\nline 1\nline 2`)).toBe("exited (crashed: killed by SIGKILL)");
    expect(errorHeadline("cannot start alpha: port 8080 is held by pid 4242 (python3); stop that process, then start it again")).toBe("cannot start alpha: port 8080 is held by pid 4242 (python3); stop that process, then start it again");
    expect(errorHeadline("  first line  \nsecond")).toBe("first line");
    expect(errorHeadline(null)).toBe("");
    expect(errorHeadline("")).toBe("");
  });
});
