"use client";
/**
 * Start, stop and restart of one model's server, as the fleet row, the model
 * page and the playground use them: each sets the wanted state in the cached
 * status at once (so the row reads "queued" / "stopping" before the answer),
 * says in a toast what failed, what a memory plan refused (with its
 * numbers), the restart a stop cancelled, a stop or restart recorded for a host that cannot be reached now, or that a disabled model it started
 * is still not served by the gateway, and refetches the status when it settles.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { errorMessage } from "~/components/api/errors";
import { useToast } from "~/components/ui/toaster";
import { useTRPC } from "~/trpc/client";
import type { StatusRow } from "./fleet-view";
import { restartPendingNote, stopNote, stopPendingNote } from "./stop-note";

/** `label`: how toasts name the model ("Start alpha failed: …"); omit it where the page already says which model. */
export function useServerActions(modelId: string | null, label?: string) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const toast = useToast();
  const statusKey = trpc.servers.status.queryKey();
  const patch = (fn: (r: StatusRow) => StatusRow) => queryClient.setQueryData(statusKey, (old) => old?.map((r) => (r.modelId === modelId ? fn(r) : r)));
  const settle = () => queryClient.invalidateQueries({ queryKey: statusKey });
  const fail = (what: string) => (err: unknown) => toast.push(`${what}${label ? ` ${label}` : ""} failed: ${errorMessage(err)}`, "bad");

  const start = useMutation(
    trpc.servers.start.mutationOptions({
      onMutate: () => patch((r) => ({ ...r, desired: "running", lastError: null })),
      onSuccess: (r) => {
        if (r.memory?.verdict === "refused" && r.error) toast.push(`Not started: ${r.error}`, "bad");
        // A start that ended failed at once (its port still held, …): said, as the page around it may read the same
        // as before the click (a trial pressed the Playground's Start before freeing the port, and saw nothing).
        else if (r.state === "failed") fail("Start")(new Error(r.error ?? "it ended failed"));
        // Started, and still not served: the gateway answers 409 until it is enabled.
        if (r.disabled) toast.push(r.disabled.message, "info");
      },
      onError: fail("Start"),
      onSettled: settle,
    }),
  );
  const stop = useMutation(
    trpc.servers.stop.mutationOptions({
      onMutate: () => patch((r) => ({ ...r, desired: "stopped" })),
      // What the row cannot say: a restart after a crash that this stop cancelled.
      onSuccess: (r) => {
        // Its host cannot be reached: recorded, and made once the host is back (the row keeps its last known state).
        const pending = stopPendingNote(r);
        if (pending) toast.push(pending, "info");
        else if (r.restartCancelled) toast.push(stopNote(r) ?? `${r.name}: stopped`, "info");
      },
      onError: fail("Stop"),
      onSettled: settle,
    }),
  );
  const restart = useMutation(
    trpc.servers.restart.mutationOptions({
      onMutate: () => patch((r) => ({ ...r, desired: "running" })),
      onSuccess: (r) => {
        // Its host cannot be reached: recorded, and made once the host is back (the row keeps its last known state).
        const pending = restartPendingNote(r);
        if (pending) toast.push(pending, "info");
        // Failed, or not made (its next port held: the server keeps running): said, as `synapse restart` says it.
        else if (r.state === "failed" || r.error) fail("Restart")(new Error(r.error ?? "it ended failed"));
        if (r.disabled) toast.push(r.disabled.message, "info");
      },
      onError: fail("Restart"),
      onSettled: settle,
    }),
  );
  return { start, stop, restart, busy: start.isPending || stop.isPending || restart.isPending, patch, settle };
}
