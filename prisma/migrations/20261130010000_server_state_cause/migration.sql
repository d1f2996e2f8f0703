-- Why a server is not running, as data (STOP_CAUSES): requested, crash, host-stop, deadline, idle, evicted, worker-lost.
ALTER TABLE "ServerState" ADD COLUMN "cause" TEXT;
