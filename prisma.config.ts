// Prisma CLI configuration. The app itself opens the database through the
// better-sqlite3 adapter (src/server/db/client.ts) and applies migrations on
// start; this file serves `prisma generate` and, where Prisma's engine can be
// downloaded, `prisma migrate deploy` / `prisma studio`.
import path from "node:path";
import { defineConfig } from "prisma/config";

const file = process.env.DATABASE_URL ?? `file:${path.join("data", "synapse.db")}`;

export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: file },
});
