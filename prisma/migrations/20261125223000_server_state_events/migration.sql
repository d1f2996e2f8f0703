-- CreateTable
CREATE TABLE "ServerState" (
    "modelId" TEXT NOT NULL PRIMARY KEY,
    "desired" TEXT NOT NULL DEFAULT 'stopped',
    "observed" TEXT NOT NULL DEFAULT 'stopped',
    "pid" INTEGER,
    "port" INTEGER,
    "startedAt" DATETIME,
    "readyAt" DATETIME,
    "stoppedAt" DATETIME,
    "restarts" INTEGER NOT NULL DEFAULT 0,
    "recentCrashes" TEXT NOT NULL DEFAULT '[]',
    "nextRestartAt" DATETIME,
    "lastError" TEXT,
    "lastExitCode" INTEGER,
    "lastSignal" TEXT,
    "gpuBackend" TEXT,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "ServerState_modelId_fkey" FOREIGN KEY ("modelId") REFERENCES "Model" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "Event" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "modelId" TEXT,
    "hostId" TEXT,
    "kind" TEXT NOT NULL,
    "state" TEXT,
    "message" TEXT NOT NULL,
    "data" TEXT,
    CONSTRAINT "Event_modelId_fkey" FOREIGN KEY ("modelId") REFERENCES "Model" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE INDEX "Event_modelId_id_idx" ON "Event"("modelId", "id");
