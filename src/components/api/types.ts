/**
 * Types of what the API returns and accepts, inferred from the app's router:
 * the dashboard never writes a duplicate of a server type.
 */
import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "~/server/api/root";

export type RouterOutputs = inferRouterOutputs<AppRouter>;
export type RouterInputs = inferRouterInputs<AppRouter>;
