/**
 * Who holds a port on this machine now, for a model saved with a port on a
 * local host (models.ts `localPortHolder`) and for a restart onto a changed
 * port (fleet.ts): the agent's own check (a bind
 * probe on 127.0.0.1, where model servers listen, then /proc or lsof for the
 * holder), so the warning names the program a start would be refused for.
 */
import { describeHolder, portHolder } from "synapse-host-agent/port";

/** "port 3428 is held by pid 11606 (python3)" (or "… is in use (holder not visible to this user)"); null when `port` (1–65535) is free on 127.0.0.1. */
export async function localPortHolder(port: number): Promise<string | null> {
  const holder = await portHolder(port, "127.0.0.1");
  return holder ? describeHolder(holder) : null;
}
