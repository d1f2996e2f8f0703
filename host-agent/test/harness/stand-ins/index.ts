/** Paths of the scripted fault stand-ins (executable node scripts, NOT llama-server). */
import path from "node:path";

const dir = import.meta.dirname;
export const standIns = {
  ignoresSigterm: path.join(dir, "stand-in-ignores-sigterm.mjs"),
  exitsWhileLoading: path.join(dir, "stand-in-exits-while-loading.mjs"),
  forksChild: path.join(dir, "stand-in-forks-child.mjs"),
  hangsLoading: path.join(dir, "stand-in-hangs-loading.mjs"),
  chattyLoader: path.join(dir, "stand-in-chatty-loader.mjs"),
  recordsSpawn: path.join(dir, "stand-in-records-spawn.mjs"),
} as const;
