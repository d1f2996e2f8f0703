/** Bytes in binary units, short ("512 MiB", "3.2 GiB"). */
export function formatBytes(v: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let x = Math.abs(v);
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x >= 100 || i === 0 ? Math.round(x) : x.toFixed(1)} ${units[i]}`;
}

/** A rate, short ("0.4", "12", "1.2k"). */
export function formatRate(v: number): string {
  const a = Math.abs(v);
  if (a >= 1000) return `${(v / 1000).toFixed(1)}k`;
  if (a >= 10) return String(Math.round(v));
  return a === 0 ? "0" : v.toFixed(1);
}
