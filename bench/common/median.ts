/** The middle value (the upper one of the two middles for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** Rounded to two decimals, as the native benchmarks report µs. */
export const round2 = (value: number): number => Math.round(value * 100) / 100;
