-- Gateway API keys (issue 15): created in the dashboard, shown once, stored as a SHA-256 hash;
-- `models` is a JSON array of model names the key may use ("[]": every model).
CREATE TABLE "GatewayKey" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "keyHash" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "models" TEXT NOT NULL DEFAULT '[]',
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastUsedAt" DATETIME
);
CREATE UNIQUE INDEX "GatewayKey_keyHash_key" ON "GatewayKey"("keyHash");

-- Each model's own llama-server key (given to it as LLAMA_API_KEY), so nothing else on its host can
-- use the server; stable across restarts. Existing models get a random one here; new ones get a
-- UUIDv4 from the client. serverApiKeyOff: the model opts out (clients that still talk to its port).
ALTER TABLE "Model" ADD COLUMN "serverApiKey" TEXT;
ALTER TABLE "Model" ADD COLUMN "serverApiKeyOff" BOOLEAN NOT NULL DEFAULT false;
UPDATE "Model" SET "serverApiKey" = lower(hex(randomblob(16))) WHERE "serverApiKey" IS NULL;
