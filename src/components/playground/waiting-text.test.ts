import { describe, expect, it } from "vitest";
import { waitingText } from "./waiting-text";

describe("waitingText: the playground's line while a message waits", () => {
  it("says it waits for a place, and how many are answered and waiting, when the model's queue is not empty", () => {
    expect(waitingText("alpha", { running: 1, queued: 3 })).toBe("Waiting for a place at alpha: 1 request being answered, 3 waiting (this one among them)…");
    expect(waitingText("alpha", { running: 2, queued: 1 })).toBe("Waiting for a place at alpha: 2 requests being answered, 1 waiting (this one among them)…");
  });

  it("waits for the first token when nobody waits, or before the queue is known", () => {
    expect(waitingText("alpha", { running: 1, queued: 0 })).toBe("Waiting for the first token…");
    expect(waitingText("alpha", undefined)).toBe("Waiting for the first token…");
  });
});
