/** Formatting shared by the fleet and model pages (pure). */

/**
 * A model's port as the model page and the CLI's PORT show it: the port its server listens on, and the
 * registry's (what the next start uses) when a port edited while the server runs differs from it: "3414",
 * "3414 (3416 at restart)". The fleet row, too narrow for that, puts "→ 3416" on a second line (fleet-row.tsx).
 */
export function portText(r: { port: number; pendingPort?: number | null }): string {
  return r.pendingPort !== undefined && r.pendingPort !== null && r.pendingPort !== r.port ? `${r.port} (${r.pendingPort} at restart)` : String(r.port);
}

/**
 * 3 s, 4 m 05 s, 2 h 03 m, 3 d 04 h: two units at most, fixed-ish width; a negative span reads as 0 s.
 * `unitGap` goes between a number and its unit ("" for a terminal's compact "4m 05s").
 */
export function formatDuration(ms: number, unitGap = " "): string {
  const g = unitGap;
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}${g}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}${g}m ${String(s % 60).padStart(2, "0")}${g}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}${g}h ${String(m % 60).padStart(2, "0")}${g}m`;
  const d = Math.floor(h / 24);
  return `${d}${g}d ${String(h % 24).padStart(2, "0")}${g}h`;
}

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${v >= 100 || u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

/** 7.2e9 → "7.2B", 470e3 → "470K". */
export function formatParams(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n) || n <= 0) return "—";
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 0 : 1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`;
  if (n >= 1e3) return `${Math.round(n / 1e3)}K`;
  return String(n);
}

export function toTime(value: string | Date | null | undefined): number | null {
  if (value === null || value === undefined) return null;
  const t = value instanceof Date ? value.getTime() : Date.parse(value);
  return Number.isFinite(t) ? t : null;
}
