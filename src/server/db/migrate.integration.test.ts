import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { tempDir } from "../../../test/harness/temp";
import { openDatabase } from "./client";
import { migrate, readMigrations } from "./migrate";

const migrationsDir = path.resolve(import.meta.dirname, "../../../prisma/migrations");
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

function freshFile(): string {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return path.join(t.dir, "data", "synapse.db");
}

describe("migrations from Prisma's SQL files", () => {
  it("migrates a fresh database, and every model round-trips through the generated client", async () => {
    const file = freshFile();
    const db = openDatabase(file);
    try {
      const host = await db.host.create({
        data: { name: "mac", linkKind: "ssh", sshHost: "host.docker.internal", sshPort: 2222, sshUser: "me", sshIdentityFile: "/k", hostKeyFingerprint: "SHA256:abc", hostModelsRoot: "/Users/me/models", registryModelsRoot: "/models", llamaServerBin: "/opt/homebrew/bin/llama-server" },
      });
      const model = await db.model.create({
        data: {
          name: "qwen-7b", hostId: host.id, filePath: "/models/qwen.gguf", port: 8080, enabled: true, ctxSize: 4096, gpuLayers: 99, threads: 8, batchSize: 512, ubatchSize: 256,
          flashAttn: "on", loadMode: "mlock", parallel: 2, alias: "qwen", readinessDeadlineMs: 60000, extraFlags: '[{"flag":"--metrics"}]', architecture: "qwen2",
          parameterCount: 7.6e9, quantization: "Q4_K_M", contextLength: 32768, sizeBytes: 4.7e9, family: "qwen", source: "imported",
          loadPolicy: "on-demand", idleTimeoutMs: 300000, concurrency: 4, queueLimit: 16,
        },
      });
      const key = await db.gatewayKey.create({ data: { name: "ci", keyHash: "ab".repeat(32), prefix: "sk-synapse-abcdef", models: '["qwen-7b"]' } });
      expect(await db.gatewayKey.findUniqueOrThrow({ where: { keyHash: "ab".repeat(32) } })).toMatchObject({ id: key.id, name: "ci", models: '["qwen-7b"]', lastUsedAt: null });
      await expect(db.gatewayKey.create({ data: { name: "dup", keyHash: "ab".repeat(32), prefix: "x" } })).rejects.toThrow(/Unique constraint/);
      const settings = await db.runtimeSettings.create({ data: { id: 1 } });
      const started = new Date("2026-11-25T10:00:00.000Z");
      await db.serverState.create({
        data: { modelId: model.id, desired: "running", observed: "ready", pid: 4242, port: 8080, startedAt: started, readyAt: started, restarts: 2, recentCrashes: "[]", lastError: "x", lastExitCode: 1, lastSignal: "SIGKILL", gpuBackend: "Metal" },
      });
      const event = await db.event.create({ data: { modelId: model.id, hostId: host.id, kind: "state", state: "ready", message: "ready", data: "{}" } });

      const read = await db.model.findUniqueOrThrow({ where: { id: model.id }, include: { host: true, server: true, events: true } });
      expect(read).toMatchObject({ name: "qwen-7b", port: 8080, enabled: true, loadMode: "mlock", parameterCount: 7.6e9, contextLength: 32768, loadPolicy: "on-demand", idleTimeoutMs: 300000, concurrency: 4, queueLimit: 16 });
      expect(read.host).toMatchObject({ name: "mac", sshPort: 2222, hostKeyFingerprint: "SHA256:abc" });
      expect(read.server).toMatchObject({ desired: "running", observed: "ready", pid: 4242, restarts: 2, gpuBackend: "Metal" });
      expect(read.server?.startedAt?.toISOString()).toBe(started.toISOString());
      expect(read.events.map((e) => e.id)).toEqual([event.id]);
      expect(settings).toMatchObject({ gpuLayers: 99, ctxSize: 32768, threads: null, batchSize: 512, ubatchSize: 256, flashAttn: "on", loadMode: "mmap", idleTimeoutMs: 600000 });

      // The schema's constraints exist in the SQL: unique port per host, unique name.
      await expect(db.model.create({ data: { name: "other", hostId: host.id, filePath: "/m/o.gguf", port: 8080 } })).rejects.toThrow(/Unique constraint/);
      await expect(db.host.create({ data: { name: "mac" } })).rejects.toThrow(/Unique constraint/);
      // Deleting a model cascades to its state and events.
      await db.model.delete({ where: { id: model.id } });
      expect(await db.serverState.count()).toBe(0);
      expect(await db.event.count()).toBe(0);
    } finally {
      await db.$disconnect();
    }
  });

  it("records migrations as Prisma does, in WAL mode, and a second run is a no-op", () => {
    const file = freshFile();
    const all = readMigrations(migrationsDir).map((m) => m.name);
    expect(all.length).toBeGreaterThanOrEqual(2);
    expect(migrate(file, migrationsDir)).toEqual({ applied: all, alreadyApplied: [] });
    expect(migrate(file, migrationsDir)).toEqual({ applied: [], alreadyApplied: all });

    const raw = new Database(file, { readonly: true });
    try {
      expect(raw.pragma("journal_mode", { simple: true })).toBe("wal");
      const rows = raw.prepare(`SELECT migration_name, checksum, finished_at, applied_steps_count FROM _prisma_migrations ORDER BY migration_name`).all() as {
        migration_name: string; checksum: string; finished_at: number; applied_steps_count: number;
      }[];
      expect(rows.map((r) => r.migration_name)).toEqual(all);
      for (const r of rows) {
        expect(r.checksum).toMatch(/^[0-9a-f]{64}$/);
        expect(r.finished_at).toBeTruthy();
        expect(r.applied_steps_count).toBe(1);
      }
    } finally {
      raw.close();
    }
  });

  it("upgrades a database left at an older migration, keeping its rows", async () => {
    const file = freshFile();
    const older = tempDir();
    cleanups.push(older.cleanup);
    const first = readMigrations(migrationsDir)[0]!;
    fs.mkdirSync(path.join(older.dir, first.name));
    fs.writeFileSync(path.join(older.dir, first.name, "migration.sql"), first.sql);
    expect(migrate(file, older.dir).applied).toEqual([first.name]);

    const raw = new Database(file);
    raw.prepare(`INSERT INTO "Host" (id, name, updatedAt) VALUES ('h1', 'kept', 0)`).run();
    raw.close();

    const result = migrate(file, migrationsDir);
    expect(result.alreadyApplied).toEqual([first.name]);
    expect(result.applied.length).toBeGreaterThan(0);
    const db = openDatabase(file);
    try {
      expect((await db.host.findUniqueOrThrow({ where: { id: "h1" } })).name).toBe("kept");
      expect(await db.serverState.count()).toBe(0);
    } finally {
      await db.$disconnect();
    }
  });

  it("the stopIncomplete column: a failed row whose last error is an incomplete stop's gets it from those words, others none", async () => {
    const file = freshFile();
    const before = tempDir();
    cleanups.push(before.cleanup);
    const all = readMigrations(migrationsDir);
    const added = all.findIndex((m) => m.name.endsWith("_server_state_stop_incomplete"));
    expect(added).toBeGreaterThan(0);
    for (const m of all.slice(0, added)) {
      fs.mkdirSync(path.join(before.dir, m.name));
      fs.writeFileSync(path.join(before.dir, m.name, "migration.sql"), m.sql);
    }
    migrate(file, before.dir);
    const raw = new Database(file);
    raw.prepare(`INSERT INTO "Host" (id, name, updatedAt) VALUES ('h1', 'mac', 0)`).run();
    const rows = {
      held: ["failed", "stop incomplete: port 8081 still held by pid 4242 (node)\nlast log lines:\nx"],
      unseen: ["failed", "stop incomplete: port 8082 still held (the holder is not visible to this user)"],
      refused: ["failed", "cannot start m3: port 8083 is held by pid 7 (python3)"],
      stopped: ["stopped", "stop incomplete: port 8084 still held by pid 9 (node)"],
    };
    let port = 8081;
    for (const [id, [observed, lastError]] of Object.entries(rows)) {
      raw.prepare(`INSERT INTO "Model" (id, name, hostId, filePath, port, updatedAt) VALUES (?, ?, 'h1', '/m.gguf', ?, 0)`).run(id, id, port++);
      raw.prepare(`INSERT INTO "ServerState" (modelId, observed, lastError, updatedAt) VALUES (?, ?, ?, 0)`).run(id, observed, lastError);
    }
    raw.close();
    migrate(file, migrationsDir);
    const db = openDatabase(file);
    try {
      const got = Object.fromEntries((await db.serverState.findMany()).map((r) => [r.modelId, r.stopIncomplete === null ? null : JSON.parse(r.stopIncomplete)]));
      expect(got).toEqual({
        held: { port: 8081, holderPid: 4242, holderCommand: null },
        unseen: { port: 8082, holderPid: null, holderCommand: null },
        refused: null,
        stopped: null,
      });
    } finally {
      await db.$disconnect();
    }
  });

  it("the global thread count: the old default 8 becomes auto (null: llama-server counts the host's cores), another count is kept, the other settings too", async () => {
    const counts = { old: 8, chosen: 6 };
    const all = readMigrations(migrationsDir);
    const added = all.findIndex((m) => m.name.endsWith("_threads_auto"));
    expect(added).toBeGreaterThan(0);
    const got: Record<string, unknown> = {};
    for (const [name, threads] of Object.entries(counts)) {
      const file = freshFile();
      const before = tempDir();
      cleanups.push(before.cleanup);
      for (const m of all.slice(0, added)) {
        fs.mkdirSync(path.join(before.dir, m.name));
        fs.writeFileSync(path.join(before.dir, m.name, "migration.sql"), m.sql);
      }
      migrate(file, before.dir);
      const raw = new Database(file);
      raw.prepare(`INSERT INTO "RuntimeSettings" (id, threads, ctxSize, idleTimeoutMs, updatedAt) VALUES (1, ?, 4096, 300000, 0)`).run(threads);
      raw.close();
      migrate(file, migrationsDir);
      const db = openDatabase(file);
      try {
        got[name] = await db.runtimeSettings.findUniqueOrThrow({ where: { id: 1 }, select: { threads: true, ctxSize: true, idleTimeoutMs: true, gpuLayers: true } });
        // A fresh row (the default) is auto too.
        await db.runtimeSettings.delete({ where: { id: 1 } });
        expect((await db.runtimeSettings.create({ data: { id: 1 } })).threads).toBeNull();
      } finally {
        await db.$disconnect();
      }
    }
    expect(got).toEqual({
      old: { threads: null, ctxSize: 4096, idleTimeoutMs: 300000, gpuLayers: 99 },
      chosen: { threads: 6, ctxSize: 4096, idleTimeoutMs: 300000, gpuLayers: 99 },
    });
  });

  it("refuses a migration edited after it was applied, changing nothing", () => {
    const file = freshFile();
    const copy = tempDir();
    cleanups.push(copy.cleanup);
    fs.cpSync(migrationsDir, copy.dir, { recursive: true });
    migrate(file, copy.dir);
    const first = readMigrations(copy.dir)[0]!;
    fs.appendFileSync(path.join(copy.dir, first.name, "migration.sql"), "\n-- edited\n");
    expect(() => migrate(file, copy.dir)).toThrow(/was changed after it was applied/);
  });
});
