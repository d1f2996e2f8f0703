"use client";
/**
 * When the API answers 401 (SYNAPSE_API_TOKEN is set and this browser has
 * no session), the page is replaced by the token form; after sign-in every
 * query is refetched and the live stream re-opened.
 */
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useState, type ReactNode } from "react";
import { isUnauthorized } from "~/components/api/errors";
import { useLive } from "~/components/live/live-provider";
import { TokenForm } from "./token-form";

export function AuthGate({ children }: { children: ReactNode }) {
  const queryClient = useQueryClient();
  const { reconnect } = useLive();
  const [needsToken, setNeedsToken] = useState(false);

  useEffect(() => {
    // "failed" is each attempt (before retries run out), so the form shows at the first 401.
    const offQueries = queryClient.getQueryCache().subscribe((event) => {
      if (event.type !== "updated") return;
      const a = event.action;
      if ((a.type === "error" || a.type === "failed") && isUnauthorized(a.error)) setNeedsToken(true);
    });
    const offMutations = queryClient.getMutationCache().subscribe((event) => {
      if (event.type !== "updated") return;
      const a = event.action;
      if ((a.type === "error" || a.type === "failed") && isUnauthorized(a.error)) setNeedsToken(true);
    });
    return () => {
      offQueries();
      offMutations();
    };
  }, [queryClient]);

  if (!needsToken) return <>{children}</>;
  return (
    <TokenForm
      onSignedIn={() => {
        setNeedsToken(false);
        void queryClient.resetQueries();
        reconnect();
      }}
    />
  );
}
