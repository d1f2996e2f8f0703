-- Metrics (issue 17): one row a minute per model for the last 24 hours, pruned by the app.
CREATE TABLE "MetricMinute" (
    "modelId" TEXT NOT NULL,
    "at" DATETIME NOT NULL,
    "generatedTokensPerS" REAL NOT NULL,
    "promptTokensPerS" REAL NOT NULL,
    "inFlight" INTEGER NOT NULL,
    "queued" INTEGER NOT NULL,
    "latencyMs" REAL,
    "memoryBytes" REAL,

    PRIMARY KEY ("modelId", "at"),
    CONSTRAINT "MetricMinute_modelId_fkey" FOREIGN KEY ("modelId") REFERENCES "Model" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX "MetricMinute_at_idx" ON "MetricMinute"("at");
