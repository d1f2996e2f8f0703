import { describe, expect, it } from "vitest";
import type { Db } from "~/server/db/client";
import { createKeyStore } from "./key-store";

/** A registry holding one key row, counting reads; `hold` makes the next read wait until released. */
function fakeDb() {
  let row: { id: string; name: string; models: string } | null = { id: "k1", name: "ci", models: "[]" };
  let reads = 0;
  let held: (() => void) | null = null;
  let holdNext = false;
  const db = {
    gatewayKey: {
      async findUnique() {
        reads++;
        const answer = row;
        if (holdNext) {
          holdNext = false;
          await new Promise<void>((r) => (held = r));
        }
        return answer;
      },
      async updateMany() {
        return { count: 1 };
      },
    },
  } as unknown as Db;
  return {
    db,
    reads: () => reads,
    remove: () => (row = null),
    hold: () => (holdNext = true),
    release: () => held?.(),
  };
}

describe("key store", () => {
  it("answers from its cache within the time limit, and asks the registry again after forget()", async () => {
    const f = fakeDb();
    const keys = createKeyStore(f.db, { ttlMs: 60_000 });
    expect((await keys.lookup("h"))?.name).toBe("ci");
    expect((await keys.lookup("h"))?.name).toBe("ci");
    expect(f.reads()).toBe(1);
    f.remove();
    expect((await keys.lookup("h"))?.name).toBe("ci");
    keys.forget();
    expect(await keys.lookup("h")).toBeNull();
    expect(f.reads()).toBe(2);
  });

  it("an answer read before forget() is used by its own lookup but not cached", async () => {
    const f = fakeDb();
    const keys = createKeyStore(f.db, { ttlMs: 60_000 });
    f.hold();
    const early = keys.lookup("h");
    await new Promise((r) => setTimeout(r, 0));
    f.remove();
    keys.forget();
    f.release();
    expect((await early)?.name).toBe("ci");
    expect(await keys.lookup("h")).toBeNull();
    expect(f.reads()).toBe(2);
  });
});
