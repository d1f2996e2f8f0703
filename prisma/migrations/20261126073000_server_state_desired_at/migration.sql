-- When `desired` last changed: a stop made on the host after it (while the app was away) wins at reconnect.
ALTER TABLE "ServerState" ADD COLUMN "desiredAt" DATETIME;
