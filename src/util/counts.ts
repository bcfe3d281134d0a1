/** Counts by name (mesh errors by reason, circuit-open by limit): their difference over a window and their sum. */

/** `now` − `base` for each name, only the names that grew (no base: all of `now` that is positive). */
export function countsSince(
  now: Readonly<Record<string, number>>,
  base?: Readonly<Record<string, number>>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(now)) {
    const d = v - (base?.[k] ?? 0);
    if (d > 0) out[k] = d;
  }
  return out;
}

/** Adds `from` into `into`, name by name. */
export function addCounts(into: Record<string, number>, from: Readonly<Record<string, number>>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}
