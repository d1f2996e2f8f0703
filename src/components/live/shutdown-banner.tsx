"use client";
/**
 * A banner on every page while the app shuts down (shutdown-text.ts says what it reads). Fetched once, again at
 * each fleet action or state event (LiveProvider), and once a second while a shutdown is known: its countdown and
 * its request count move. Kept, reworded, once the page has lost the app; gone when the app answers again.
 */
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "~/trpc/client";
import { useLive } from "./live-provider";
import { useNow } from "./now";
import { shutdownText } from "./shutdown-text";

/**
 * The app's shutdown as the pages show it (servers.shutdown; null data: the app runs): one query for the banner
 * and the header's indicator, read again once a second while a shutdown is known.
 */
export function useShutdownState() {
  const trpc = useTRPC();
  return useQuery(trpc.servers.shutdown.queryOptions(undefined, { refetchInterval: (q) => (q.state.data ? 1000 : false), retry: false }));
}

export function ShutdownBanner() {
  const { connection } = useLive();
  const now = useNow();
  const shutdown = useShutdownState();
  if (!shutdown.data) return null;
  const connected = connection === "live" && !shutdown.isError;
  return (
    <div className="notice" data-tone="warn" role="status" data-testid="shutdown-banner" data-phase={connected ? shutdown.data.phase : "gone"}>
      {shutdownText(shutdown.data, now, connected)}
    </div>
  );
}
