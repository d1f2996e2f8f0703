-- CreateTable
CREATE TABLE "Host" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "linkKind" TEXT NOT NULL DEFAULT 'local',
    "sshHost" TEXT,
    "sshPort" INTEGER NOT NULL DEFAULT 22,
    "sshUser" TEXT,
    "sshIdentityFile" TEXT,
    "hostKeyFingerprint" TEXT,
    "hostModelsRoot" TEXT,
    "registryModelsRoot" TEXT,
    "llamaServerBin" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "Model" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "hostId" TEXT NOT NULL,
    "filePath" TEXT NOT NULL,
    "port" INTEGER NOT NULL,
    "enabled" BOOLEAN NOT NULL DEFAULT false,
    "ctxSize" INTEGER,
    "gpuLayers" INTEGER,
    "threads" INTEGER,
    "batchSize" INTEGER,
    "ubatchSize" INTEGER,
    "flashAttn" TEXT,
    "loadMode" TEXT,
    "parallel" INTEGER,
    "alias" TEXT,
    "readinessDeadlineMs" INTEGER,
    "extraFlags" TEXT NOT NULL DEFAULT '[]',
    "architecture" TEXT,
    "parameterCount" REAL,
    "quantization" TEXT,
    "contextLength" INTEGER,
    "sizeBytes" REAL,
    "family" TEXT,
    "source" TEXT NOT NULL DEFAULT 'manual',
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "Model_hostId_fkey" FOREIGN KEY ("hostId") REFERENCES "Host" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "RuntimeSettings" (
    "id" INTEGER NOT NULL PRIMARY KEY DEFAULT 1,
    "gpuLayers" INTEGER NOT NULL DEFAULT 99,
    "ctxSize" INTEGER NOT NULL DEFAULT 32768,
    "threads" INTEGER NOT NULL DEFAULT 8,
    "batchSize" INTEGER NOT NULL DEFAULT 512,
    "ubatchSize" INTEGER NOT NULL DEFAULT 256,
    "flashAttn" TEXT NOT NULL DEFAULT 'on',
    "loadMode" TEXT NOT NULL DEFAULT 'mmap',
    "parallel" INTEGER NOT NULL DEFAULT 1,
    "readinessDeadlineMs" INTEGER NOT NULL DEFAULT 120000,
    "stopGraceMs" INTEGER NOT NULL DEFAULT 10000,
    "autoRestart" BOOLEAN NOT NULL DEFAULT true,
    "updatedAt" DATETIME NOT NULL
);

-- CreateIndex
CREATE UNIQUE INDEX "Host_name_key" ON "Host"("name");

-- CreateIndex
CREATE UNIQUE INDEX "Model_name_key" ON "Model"("name");

-- CreateIndex
CREATE INDEX "Model_enabled_idx" ON "Model"("enabled");

-- CreateIndex
CREATE UNIQUE INDEX "Model_hostId_port_key" ON "Model"("hostId", "port");
