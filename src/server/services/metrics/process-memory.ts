/**
 * Resident memory of a server's process on the app's own machine (a
 * `local` host), from /proc/PID/status (Linux). Null elsewhere: a Mac's
 * local servers and SSH hosts need their agent to tell (a later agent
 * feature), and the chart then shows no memory line.
 */
import { readFile } from "node:fs/promises";

export async function residentBytes(pid: number): Promise<number | null> {
  if (process.platform !== "linux") return null;
  try {
    const text = await readFile(`/proc/${pid}/status`, "utf8");
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}
