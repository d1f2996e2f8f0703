"use client";
import { useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { TokenForm } from "~/components/auth/token-form";
import { useLive } from "~/components/live/live-provider";

export function LoginForm() {
  const router = useRouter();
  const queryClient = useQueryClient();
  const { reconnect } = useLive();
  return (
    <TokenForm
      onSignedIn={() => {
        void queryClient.resetQueries();
        reconnect();
        router.push("/");
      }}
    />
  );
}
