/**
 * Byte counts as the memory views print them (binary units: 1 MiB = 1024² bytes, 1 GiB = 1024³).
 */
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/**
 * A size in a memory bar whose scale (its host's budget, in bytes) is `scale`.
 * Under a 4 GiB scale (tests, tiny budgets): MiB with one decimal ("21.3 MiB").
 * From 4 GiB up: GiB with one decimal from 1 GiB up ("7.5 GiB"), whole MiB
 * below it ("12 MiB", "1023 MiB"), and MiB with one decimal under 10 MiB
 * ("0.3 MiB"), so a small model or cache never reads "0.0 GiB".
 */
export function sizeText(bytes: number, scale: number): string {
  const mib = bytes / MiB;
  if (scale < 4 * GiB) return `${mib.toFixed(1)} MiB`;
  if (Math.round(mib * 10) < 100) return `${mib.toFixed(1)} MiB`;
  if (Math.round(mib) < 1024) return `${Math.round(mib)} MiB`;
  return `${(bytes / GiB).toFixed(1)} GiB`;
}

/** One figure on its own: GiB with two decimals from 1 GiB up, else MiB (a 30 MiB KV cache is not "0.0 GiB"). */
export function oneSize(bytes: number): string {
  return bytes >= GiB ? `${(bytes / GiB).toFixed(2)} GiB` : `${(bytes / MiB).toFixed(1)} MiB`;
}
