/** The app's router: every procedure the dashboard and typed clients call. */
import { gatewayKeysRouter } from "./routers/gateway-keys";
import { hostsRouter } from "./routers/hosts";
import { metricsRouter } from "./routers/metrics";
import { modelsRouter } from "./routers/models";
import { serversRouter } from "./routers/servers";
import { settingsRouter } from "./routers/settings";
import { createCallerFactory, router } from "./trpc";

export const appRouter = router({
  servers: serversRouter,
  models: modelsRouter,
  hosts: hostsRouter,
  settings: settingsRouter,
  gatewayKeys: gatewayKeysRouter,
  metrics: metricsRouter,
});

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
