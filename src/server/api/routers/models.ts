import { getDb } from "~/server/db/client";
import { publicProcedure, router } from "../trpc";

export const modelsRouter = router({
  list: publicProcedure.query(() =>
    getDb().model.findMany({
      orderBy: { name: "asc" },
      select: { id: true, name: true, port: true, enabled: true, filePath: true, host: { select: { name: true } }, server: { select: { observed: true } } },
    }),
  ),
});
