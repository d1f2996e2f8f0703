/** Paths of the scripted fault stand-ins (executable node scripts, NOT llama-server). */
import path from "node:path";

const dir = import.meta.dirname;
export const standIns = {
  ignoresSigterm: path.join(dir, "stand-in-ignores-sigterm.mjs"),
  waitsForClients: path.join(dir, "stand-in-waits-for-clients.mjs"),
  exitsWhileLoading: path.join(dir, "stand-in-exits-while-loading.mjs"),
  forksChild: path.join(dir, "stand-in-forks-child.mjs"),
  hangsLoading: path.join(dir, "stand-in-hangs-loading.mjs"),
  chattyLoader: path.join(dir, "stand-in-chatty-loader.mjs"),
  recordsSpawn: path.join(dir, "stand-in-records-spawn.mjs"),
  setsidChild: path.join(dir, "stand-in-setsid-child.mjs"),
  forksDaemonExits: path.join(dir, "stand-in-forks-daemon-exits.mjs"),
  escapes: path.join(dir, "stand-in-escapes.mjs"),
  bindsLate: path.join(dir, "stand-in-binds-late.mjs"),
  foreignListener: path.join(dir, "stand-in-foreign-listener.mjs"),
  floodsLog: path.join(dir, "stand-in-floods-log.mjs"),
} as const;
