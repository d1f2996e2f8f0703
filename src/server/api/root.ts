/** The app's router: every procedure the dashboard and typed clients call. */
import { modelsRouter } from "./routers/models";
import { createCallerFactory, router } from "./trpc";

export const appRouter = router({
  models: modelsRouter,
});

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
