-- Remote hosts through the gateway (issue 15): how the gateway reaches an ssh host's model servers
-- ("tunnel": a channel on the host's ssh connection; "direct": directAddress:PORT, null meaning
-- host.docker.internal) and the ports the host's key may open channels to ("8080-8099").
ALTER TABLE "Host" ADD COLUMN "upstreamMode" TEXT NOT NULL DEFAULT 'tunnel';
ALTER TABLE "Host" ADD COLUMN "modelPorts" TEXT;
ALTER TABLE "Host" ADD COLUMN "directAddress" TEXT;
