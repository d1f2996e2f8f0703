import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { appRouter } from "~/server/api/root";
import { createTRPCContext } from "~/server/api/trpc";
import { limitRequestBody } from "~/server/http/body-limit";
import { createLogger } from "~/server/log/logger";

const log = createLogger("trpc");

function handler(req: Request) {
  return fetchRequestHandler({
    endpoint: "/api/trpc",
    // Past the API's body limit: 413 saying so (Next's proxy would otherwise cut the body short).
    req: limitRequestBody(req),
    router: appRouter,
    createContext: () => createTRPCContext({ headers: req.headers }),
    onError({ path, error }) {
      if (error.code === "INTERNAL_SERVER_ERROR") log.error("procedure failed", { path, err: error.cause ?? error });
    },
  });
}

export const dynamic = "force-dynamic";
export { handler as GET, handler as POST };
