-- The global thread count may be null: no --threads, so llama-server picks its own count (llama.cpp's
-- cpu_get_num_math: the host's physical cores; on Apple Silicon its performance cores). The fixed 8 of
-- before ran 8 threads on a 2-CPU host. SQLite changes a column's nullability by rebuilding the table
-- (as Prisma's own migrations do).
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_RuntimeSettings" (
    "id" INTEGER NOT NULL PRIMARY KEY DEFAULT 1,
    "gpuLayers" INTEGER NOT NULL DEFAULT 99,
    "ctxSize" INTEGER NOT NULL DEFAULT 32768,
    "threads" INTEGER,
    "batchSize" INTEGER NOT NULL DEFAULT 512,
    "ubatchSize" INTEGER NOT NULL DEFAULT 256,
    "flashAttn" TEXT NOT NULL DEFAULT 'on',
    "loadMode" TEXT NOT NULL DEFAULT 'mmap',
    "parallel" INTEGER NOT NULL DEFAULT 1,
    "readinessDeadlineMs" INTEGER NOT NULL DEFAULT 120000,
    "stopGraceMs" INTEGER NOT NULL DEFAULT 10000,
    "autoRestart" BOOLEAN NOT NULL DEFAULT true,
    "updatedAt" DATETIME NOT NULL,
    "idleTimeoutMs" INTEGER NOT NULL DEFAULT 600000
);
-- 8 was the column's default, written when the row was first read; a row holding it takes the new
-- default (null). Any other count was chosen (or imported from runtime_settings.json) and is kept.
INSERT INTO "new_RuntimeSettings" ("id", "gpuLayers", "ctxSize", "threads", "batchSize", "ubatchSize", "flashAttn", "loadMode", "parallel", "readinessDeadlineMs", "stopGraceMs", "autoRestart", "updatedAt", "idleTimeoutMs")
SELECT "id", "gpuLayers", "ctxSize", CASE WHEN "threads" = 8 THEN NULL ELSE "threads" END, "batchSize", "ubatchSize", "flashAttn", "loadMode", "parallel", "readinessDeadlineMs", "stopGraceMs", "autoRestart", "updatedAt", "idleTimeoutMs" FROM "RuntimeSettings";
DROP TABLE "RuntimeSettings";
ALTER TABLE "new_RuntimeSettings" RENAME TO "RuntimeSettings";
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
