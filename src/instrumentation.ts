/**
 * Next calls `register` once when the server process starts. The app boots
 * here: configuration checked, database migrated, the fleet runtime created
 * (re-adopting servers that are already running), shutdown wired to signals.
 */
export async function register(): Promise<void> {
  if (process.env.NEXT_RUNTIME !== "nodejs") return;
  const { boot } = await import("./server/boot");
  await boot();
}
