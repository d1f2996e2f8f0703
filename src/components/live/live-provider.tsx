"use client";
/**
 * The page's one live connection: the `servers.events` subscription over SSE.
 *
 * - Each state event patches the fleet status in the query cache at once
 *   (the row's badge changes without a request), and so do a restart's
 *   action events (its due time, its count); then a debounced refetch
 *   brings the rest of the row from the server.
 * - EventSource reconnects on its own after the app restarts, resuming from
 *   the last event id; when the stream opens again everything is refetched,
 *   since the app may have changed while we were away.
 * - A stream that ends for good (an error the browser does not retry) is
 *   re-opened with backoff.
 * - Components can listen to the events (start-all progress) through
 *   `useFleetEvents`.
 */
import { useQueryClient } from "@tanstack/react-query";
import { useSubscription } from "@trpc/tanstack-react-query";
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, type ReactNode } from "react";
import { useTRPC } from "~/trpc/client";
import { isStopCause } from "synapse-host-agent/server-states";
import { isRestartEvent, patchRowFromRestartEvent, patchRowFromStateEvent, toFleetEvent, type FleetEventView } from "./fleet-event";
import { useReopenOnError } from "./reopen-on-error";

export type ConnectionState = "connecting" | "live" | "reconnecting";

interface LiveContextValue {
  connection: ConnectionState;
  /** Increments each time the stream (re)opens. */
  epoch: number;
  listen: (listener: (event: FleetEventView) => void) => () => void;
  reconnect: () => void;
}

const LiveContext = createContext<LiveContextValue>({
  connection: "connecting",
  epoch: 0,
  listen: () => () => {},
  reconnect: () => {},
});

const REFETCH_DEBOUNCE_MS = 250;

export function LiveProvider({ children }: { children: ReactNode }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const listeners = useRef(new Set<(event: FleetEventView) => void>());
  const [epoch, setEpoch] = useState(0);
  const openedOnce = useRef(false);
  const refetchTimer = useRef<ReturnType<typeof setTimeout> | null>(null);

  const scheduleStatusRefetch = useCallback(() => {
    if (refetchTimer.current) return;
    refetchTimer.current = setTimeout(() => {
      refetchTimer.current = null;
      void queryClient.invalidateQueries({ queryKey: trpc.servers.status.queryKey() });
      void queryClient.invalidateQueries({ queryKey: trpc.models.get.queryKey() });
      void queryClient.invalidateQueries({ queryKey: trpc.servers.memory.queryKey() });
      void queryClient.invalidateQueries({ queryKey: trpc.servers.shutdown.queryKey() });
    }, REFETCH_DEBOUNCE_MS);
  }, [queryClient, trpc]);

  const onEvent = useCallback(
    (raw: unknown) => {
      const event = toFleetEvent(raw);
      if (!event) return;
      if (event.kind === "state" && event.modelId && event.state) {
        const { modelId, state } = event;
        queryClient.setQueryData(trpc.servers.status.queryKey(), (rows) => rows?.map((row) => (row.modelId === modelId ? patchRowFromStateEvent(row, { ...event, state }, isStopCause) : row)));
        scheduleStatusRefetch();
      } else if (event.kind === "host") {
        void queryClient.invalidateQueries({ queryKey: trpc.hosts.list.queryKey() });
        scheduleStatusRefetch();
      } else if (event.kind === "action" || event.kind === "error") {
        const { modelId } = event;
        if (modelId && isRestartEvent(event)) {
          queryClient.setQueryData(trpc.servers.status.queryKey(), (rows) => rows?.map((row) => (row.modelId === modelId ? patchRowFromRestartEvent(row, event, Date.now()) : row)));
        }
        scheduleStatusRefetch();
      }
      for (const l of listeners.current) l(event);
    },
    [queryClient, trpc, scheduleStatusRefetch],
  );

  const onStarted = useCallback(() => {
    if (openedOnce.current) {
      // Back after a drop (the app restarted, the network blinked): what we show may be stale.
      void queryClient.invalidateQueries();
    }
    openedOnce.current = true;
    setEpoch((e) => e + 1);
  }, [queryClient]);

  const subscription = useSubscription(trpc.servers.events.subscriptionOptions({}, { onData: onEvent, onStarted }));

  // A stream that failed for good is re-opened with backoff (1 s, 2 s, 4 s … 10 s).
  useReopenOnError(subscription);
  const { status, reset } = subscription;

  useEffect(
    () => () => {
      if (refetchTimer.current) clearTimeout(refetchTimer.current);
    },
    [],
  );

  const connection: ConnectionState = status === "pending" ? "live" : openedOnce.current ? "reconnecting" : "connecting";
  const value = useMemo<LiveContextValue>(
    () => ({
      connection,
      epoch,
      listen: (listener) => {
        listeners.current.add(listener);
        return () => listeners.current.delete(listener);
      },
      reconnect: reset,
    }),
    [connection, epoch, reset],
  );
  return <LiveContext.Provider value={value}>{children}</LiveContext.Provider>;
}

export function useLive(): LiveContextValue {
  return useContext(LiveContext);
}

/** Calls `listener` for every fleet event while the component is mounted. */
export function useFleetEvents(listener: (event: FleetEventView) => void): void {
  const { listen } = useLive();
  const ref = useRef(listener);
  useEffect(() => {
    ref.current = listener;
  });
  useEffect(() => listen((e) => ref.current(e)), [listen]);
}
