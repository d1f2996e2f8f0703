/** settings.*: the global runtime defaults (the seed's runtime_settings.json). */
import { getSettings, settingsUpdateInput, updateSettings } from "~/server/services/registry";
import { publicProcedure, router } from "../trpc";

export const settingsRouter = router({
  get: publicProcedure.query(({ ctx }) => getSettings(ctx.runtime.db)),
  update: publicProcedure.input(settingsUpdateInput).mutation(({ ctx, input }) => updateSettings(ctx.runtime.db, input)),
});
