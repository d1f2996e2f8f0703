import { QueryClient } from "@tanstack/react-query";

export function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        // Live state arrives over the subscription; refetching on focus would only add load.
        staleTime: 5_000,
        refetchOnWindowFocus: false,
        retry: (count, error) => count < 2 && !String((error as { data?: { code?: string } }).data?.code ?? "").match(/BAD_REQUEST|NOT_FOUND|UNAUTHORIZED|FORBIDDEN/),
      },
    },
  });
}
