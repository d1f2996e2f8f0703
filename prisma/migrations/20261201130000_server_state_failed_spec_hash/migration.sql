-- The settings a failed start was given, as a hash (src/server/services/fleet/settings-hash.ts): a failed
-- on-demand model whose saved settings make another hash is started again by its next request. Rows that
-- failed before this column stay null: they wait for a start from the dashboard, as before.
ALTER TABLE "ServerState" ADD COLUMN "failedSpecHash" TEXT;
