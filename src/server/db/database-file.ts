import os from "node:os";
import path from "node:path";

/**
 * Absolute path of the SQLite file named by DATABASE_URL (`file:./data/synapse.db`, `file:~/…`, or a bare
 * path): `file:` dropped, a leading `~/` taken as the home folder, relative paths from `cwd`. Alone in its
 * module (node built-ins only), so the gateway's bundle can read the registry's file without the app's env.
 */
export function databaseFile(url: string, cwd = process.cwd()): string {
  const raw = url.startsWith("file:") ? url.slice("file:".length) : url;
  const p = raw.replace(/^~(?=\/)/, os.homedir());
  return path.resolve(cwd, p);
}
