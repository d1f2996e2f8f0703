/** gatewayKeys.*: API keys for the gateway (/v1). A new key is in create's answer once. */
import { createGatewayKey, deleteGatewayKey, gatewayKeyCreateInput, gatewayKeyIdInput, listGatewayKeys } from "~/server/services/registry/gateway-keys";
import { publicProcedure, router } from "../trpc";

export const gatewayKeysRouter = router({
  list: publicProcedure.query(({ ctx }) => listGatewayKeys(ctx.runtime.db)),
  create: publicProcedure.input(gatewayKeyCreateInput).mutation(({ ctx, input }) => createGatewayKey(ctx.runtime.db, input, ctx.runtime.events)),
  delete: publicProcedure.input(gatewayKeyIdInput).mutation(({ ctx, input }) => deleteGatewayKey(ctx.runtime.db, input, ctx.runtime.events)),
});
