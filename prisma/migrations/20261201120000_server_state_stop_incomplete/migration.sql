-- A stop that left the port held, as data (the agent's ServerStatus.stopIncomplete, as JSON): until now the app
-- told it by the words of the last error ("stop incomplete: port P still held by pid N (name)").
ALTER TABLE "ServerState" ADD COLUMN "stopIncomplete" TEXT;

-- Rows recorded before the column: the same words, read once here ("stop incomplete: " and "port " are 22
-- characters; a leading number of a text casts to that number).
UPDATE "ServerState" SET "stopIncomplete" = json_object(
    'port', CAST(substr("lastError", 23) AS INTEGER),
    'holderPid', CASE WHEN instr("lastError", ' still held by pid ') > 0 THEN CAST(substr("lastError", instr("lastError", ' still held by pid ') + 19) AS INTEGER) ELSE NULL END,
    'holderCommand', NULL
) WHERE "observed" = 'failed' AND "lastError" LIKE 'stop incomplete: port %';
