/**
 * The Prisma client as the app opens it: per-connection pragmas, and plain
 * writes kept out of a concurrently open transaction (one connection).
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type Db } from "./client";

let dir: string;
let db: Db;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "synapse-client-"));
  db = openDatabase(path.join(dir, "synapse.db"));
});
afterAll(async () => {
  await db?.$disconnect();
  await rm(dir, { recursive: true, force: true });
});

describe("database client", () => {
  it("sets synchronous=NORMAL and foreign_keys=ON on its connection", async () => {
    expect(await db.$queryRawUnsafe("PRAGMA synchronous")).toEqual([{ synchronous: 1n }]);
    expect(await db.$queryRawUnsafe("PRAGMA foreign_keys")).toEqual([{ foreign_keys: 1n }]);
  });

  it("a plain write made while another transaction is open survives that transaction's rollback", async () => {
    let inside!: () => void;
    const opened = new Promise<void>((r) => (inside = r));
    const failing = db.$transaction(async (tx) => {
      await tx.event.create({ data: { kind: "action", message: "rolled back" } });
      inside();
      await new Promise((r) => setTimeout(r, 100));
      throw new Error("validation failed");
    });
    await opened;
    const plain = db.event.create({ data: { kind: "state", message: "kept" } });
    await expect(failing).rejects.toThrow("validation failed");
    await plain;
    const messages = (await db.event.findMany({ select: { message: true } })).map((e) => e.message);
    expect(messages).toContain("kept");
    expect(messages).not.toContain("rolled back");
  });

  it("deleting a model cascades to its server state and events", async () => {
    const host = await db.host.create({ data: { name: "cascade-host" } });
    const model = await db.model.create({ data: { name: "cascade", hostId: host.id, filePath: "/m/a.gguf", port: 8080, server: { create: {} } } });
    await db.event.create({ data: { kind: "state", message: "x", modelId: model.id } });
    await db.model.delete({ where: { id: model.id } });
    expect(await db.serverState.count({ where: { modelId: model.id } })).toBe(0);
    expect(await db.event.count({ where: { modelId: model.id } })).toBe(0);
  });
});
