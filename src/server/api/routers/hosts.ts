/** hosts.*: machines that run llama-server, and their links. */
import { z } from "zod";
import { deleteHost, FINGERPRINT_PATTERN, getHost, hostIdInput, hostUpdateInput, hostUpsertInput, listHosts, updateHost, upsertHost } from "~/server/services/registry";
import { publicProcedure, router } from "../trpc";

const pinKeyInput = z
  .object({
    id: z.string().min(1).max(64),
    fingerprint: z.string().trim().regex(FINGERPRINT_PATTERN, "must look like SHA256:<43 base64 characters>, as `ssh-keygen -lf` prints it"),
  })
  .strict();

export const hostsRouter = router({
  list: publicProcedure.query(async ({ ctx }) =>
    Promise.all(
      (await listHosts(ctx.runtime.db)).map(async (h) => ({ ...h, link: ctx.runtime.links.status(h.id), agent: ctx.runtime.fleet.agent(h.id), memory: await ctx.runtime.fleet.hostMemory(h.id) })),
    ),
  ),
  get: publicProcedure.input(hostIdInput).query(({ ctx, input }) => getHost(ctx.runtime.db, input.id)),
  /**
   * The whole host, as the dashboard's form sends it: a field left out is cleared or takes its default; a local host with an
   * ssh-only field, or an ssh host with the other upstream mode's field (modelPorts in direct mode, directAddress in tunnel
   * mode), is BAD_REQUEST. Changing where the link goes (linkKind, sshHost, sshPort, sshUser, sshIdentityFile, a local host's
   * name) while a model on the host runs or is wanted running is CONFLICT naming the models.
   */
  upsert: publicProcedure.input(hostUpsertInput).mutation(({ ctx, input }) => upsertHost(ctx.runtime.db, input, { events: ctx.runtime.events })),
  /**
   * Some fields of a host (for scripts): fields left out keep their values, null clears one; a switch to local clears the
   * ssh-only fields, a switch of upstream mode the other mode's field. The same checks as the upsert.
   */
  update: publicProcedure.input(hostUpdateInput).mutation(({ ctx, input }) => updateHost(ctx.runtime.db, input, { events: ctx.runtime.events })),
  delete: publicProcedure.input(hostIdInput).mutation(async ({ ctx, input }) => {
    const result = await deleteHost(ctx.runtime.db, input, { events: ctx.runtime.events });
    await ctx.runtime.links.remove(input.id);
    return result;
  }),
  /** Connects (a short-lived connection for ssh) and says hello: agent and llama-server versions, platform, host key. */
  test: publicProcedure.input(hostIdInput).mutation(async ({ ctx, input }) => ctx.runtime.links.testConnection(await getHost(ctx.runtime.db, input.id))),
  /** Pins the host key the user checked (from `test`); the link refuses any other key from then on. ssh hosts only (BAD_REQUEST for a local one). */
  pinKey: publicProcedure.input(pinKeyInput).mutation(({ ctx, input }) => updateHost(ctx.runtime.db, { id: input.id, hostKeyFingerprint: input.fingerprint }, { events: ctx.runtime.events })),
});
