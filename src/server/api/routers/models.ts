/** models.*: the registry's models. Thin: parse input, call one service function. */
import {
  agentLogMover,
  agentPathChecker,
  createModel,
  deleteModel,
  discoverInput,
  getModel,
  importInput,
  importSeed,
  listModels,
  agentPortHolder,
  modelCreateInput,
  modelIdInput,
  modelListInput,
  modelSetEnabledInput,
  modelUpdateInput,
  resolveHostId,
  setModelEnabled,
  updateModel,
} from "~/server/services/registry";
import { commandPreview } from "~/server/services/preview";
import { estimateFromForm } from "~/server/services/memory/form-estimate";
import { modelEstimateInput } from "~/server/services/registry/schemas";
import { publicProcedure, router } from "../trpc";

export const modelsRouter = router({
  list: publicProcedure.input(modelListInput).query(({ ctx, input }) => listModels(ctx.runtime.db, input)),
  get: publicProcedure.input(modelIdInput).query(({ ctx, input }) => getModel(ctx.runtime.db, input.id)),
  /** Saves a new model; its path is checked on the host when the host can be asked (see `pathCheck`). */
  create: publicProcedure.input(modelCreateInput).mutation(({ ctx, input }) => createModel(ctx.runtime.db, input, { appPort: ctx.runtime.env.PORT, checkPath: agentPathChecker(ctx.runtime.links), events: ctx.runtime.events })),
  /** Saves an edit; `portWarning`: who holds the model's new port on its local host now (a warning, not a refusal). */
  update: publicProcedure
    .input(modelUpdateInput)
    .mutation(({ ctx, input }) => updateModel(ctx.runtime.db, input, { appPort: ctx.runtime.env.PORT, checkPath: agentPathChecker(ctx.runtime.links), moveLogs: agentLogMover(ctx.runtime.links), events: ctx.runtime.events, portHolder: agentPortHolder(ctx.runtime.links) })),
  delete: publicProcedure.input(modelIdInput).mutation(({ ctx, input }) => deleteModel(ctx.runtime.db, input, { events: ctx.runtime.events })),
  setEnabled: publicProcedure.input(modelSetEnabledInput).mutation(({ ctx, input }) => setModelEnabled(ctx.runtime.db, input, { events: ctx.runtime.events })),
  /** Scans the host's model folders through its agent: adds new GGUF files, disabled, and lists the registered ones it found (id, enabled). */
  discover: publicProcedure.input(discoverInput).mutation(async ({ ctx, input }) => ctx.runtime.fleet.discover(await resolveHostId(ctx.runtime.db, input.hostId))),
  /** The seed's model_registry.json / runtime_settings.json, as they are. */
  import: publicProcedure.input(importInput).mutation(async ({ ctx, input }) =>
    importSeed(ctx.runtime.db, { registry: input.registry, runtimeSettings: input.runtimeSettings }, { appPort: ctx.runtime.env.PORT, hostId: await resolveHostId(ctx.runtime.db, input.hostId) }),
  ),
  /** The memory estimate of the model with the form's unsaved runtime values (nothing is saved). */
  estimate: publicProcedure.input(modelEstimateInput).query(({ ctx, input }) => estimateFromForm(ctx.runtime.db, input, (m) => ctx.runtime.fleet.estimate(m))),
  /** The exact llama-server command line the host's agent will run for this model. */
  commandPreview: publicProcedure.input(modelIdInput).query(({ ctx, input }) => commandPreview(ctx.runtime, input.id)),
});
