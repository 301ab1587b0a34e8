/**
 * Events per second over the last second and the last ten seconds, from counts kept in
 * 100 ms buckets (a ring of them, reused: no allocation per count).
 *
 * Only complete buckets count, so a rate never includes a partly elapsed bucket; "the last
 * second" is therefore the ten whole buckets before the current one. Before the meter has
 * existed for a whole window, the rate divides by the time it has existed.
 */
const bucketMs = 100;
/** 10 s of complete buckets plus the current one. */
const bucketCount = 101;

export class RateMeter {
  readonly #counts = new Float64Array(bucketCount);
  readonly #epochs = new Float64Array(bucketCount).fill(-1);
  readonly #now: () => number;
  readonly #startedAtMs: number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
    this.#startedAtMs = now();
  }

  add(count: number): void {
    const epoch = Math.floor(this.#now() / bucketMs);
    const slot = epoch % bucketCount;
    if (this.#epochs[slot] !== epoch) {
      this.#epochs[slot] = epoch;
      this.#counts[slot] = 0;
    }
    this.#counts[slot] = (this.#counts[slot] as number) + count;
  }

  /** Per-second rate over the last `windowMs` (a multiple of 100, at most 10,000). */
  perSecond(windowMs: number): number {
    const nowMs = this.#now();
    const current = Math.floor(nowMs / bucketMs);
    const buckets = Math.min(bucketCount - 1, Math.round(windowMs / bucketMs));
    let total = 0;
    for (let epoch = current - buckets; epoch < current; epoch++) {
      const slot = epoch % bucketCount;
      if (epoch >= 0 && this.#epochs[slot] === epoch) total += this.#counts[slot] as number;
    }
    const coveredMs = Math.min(buckets * bucketMs, Math.max(bucketMs, current * bucketMs - this.#startedAtMs));
    return (total * 1000) / coveredMs;
  }
}
