-- The gateway (issue 15): per-model load policy, idle unload, concurrency limit and queue bound,
-- and the global idle time. Nulls on the model mean: the global idle time, its parallel slots,
-- the gateway's default queue bound.
ALTER TABLE "Model" ADD COLUMN "loadPolicy" TEXT NOT NULL DEFAULT 'always';
ALTER TABLE "Model" ADD COLUMN "idleTimeoutMs" INTEGER;
ALTER TABLE "Model" ADD COLUMN "concurrency" INTEGER;
ALTER TABLE "Model" ADD COLUMN "queueLimit" INTEGER;
ALTER TABLE "RuntimeSettings" ADD COLUMN "idleTimeoutMs" INTEGER NOT NULL DEFAULT 600000;
