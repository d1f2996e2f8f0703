-- Memory estimates (issue 16): a model's shape as its host's agent read it from the GGUF header(s)
-- (JSON, synapse-host-agent/model-shape), so estimates never need the file; and the per-model cap on
-- llama-server's host prompt cache (--cache-ram, MiB; null: llama-server's default of 8192).
ALTER TABLE "Model" ADD COLUMN "shape" TEXT;
ALTER TABLE "Model" ADD COLUMN "cacheRamMiB" INTEGER;
