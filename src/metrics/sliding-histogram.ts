/**
 * Percentiles over the recent past: a ring of `sliceCount` HDR histograms, each covering
 * `sliceMs` of time. Values land in the slice of "now"; a snapshot adds up every slice that
 * is still inside the window, so the window covers between (sliceCount - 1) and sliceCount
 * slices — with the defaults, the last 50 to 60 seconds.
 *
 *   time ─▶  [ slice e-5 ][ slice e-4 ][ e-3 ][ e-2 ][ e-1 ][ slice e (now) ]
 *              oldest, reset when epoch e+1 reuses its slot                ▲ record / merge
 *
 * Rotation is lazy (no timer): each slot remembers the epoch (now / sliceMs) it holds, and
 * a slot whose epoch is stale is reset before it is written or skipped when read. Merging
 * HDR histograms is exact: the window's percentiles are those of all its values, not an
 * average of per-slice or per-thread percentiles (docs/decisions/0013-hdr-histograms-merged.md).
 *
 * Alongside the window, `count` and `sum` are exact running totals since start, as
 * Prometheus summaries want them.
 */
import type { Histogram } from 'hdr-histogram-js';
import { addEncoded, createHistogram, trackable } from './hdr';

export interface WindowSnapshot {
  /** Values in the window. */
  readonly count: number;
  /** Value at each requested percentile (0–100), in recorded units; NaN when empty. */
  readonly percentiles: readonly number[];
  /** The largest value (top of its bucket); NaN when empty. */
  readonly max: number;
}

export class SlidingHistogram {
  readonly #sliceMs: number;
  readonly #slices: Histogram[];
  readonly #epochs: number[];
  readonly #merged: Histogram;
  readonly #now: () => number;
  #count = 0;
  #sum = 0;
  #destroyed = false;

  constructor(options: { sliceMs: number; sliceCount: number; now?: () => number }) {
    this.#sliceMs = options.sliceMs;
    this.#slices = Array.from({ length: options.sliceCount }, () => createHistogram());
    this.#epochs = this.#slices.map(() => -1);
    this.#merged = createHistogram();
    this.#now = options.now ?? (() => performance.now());
  }

  /** Total values recorded since start (exact). */
  get count(): number {
    return this.#count;
  }

  /** Sum of all values recorded since start (exact, in recorded units). */
  get sum(): number {
    return this.#sum;
  }

  get windowMs(): number {
    return this.#sliceMs * this.#slices.length;
  }

  record(value: number, count = 1): void {
    const clamped = trackable(value);
    this.#current().recordValueWithCount(clamped, count);
    this.#count += count;
    this.#sum += clamped * count;
  }

  /** Adds another thread's encoded histogram and its exact sum (src/metrics/hdr.ts). */
  addEncoded(encoded: Uint8Array, sum: number): void {
    const slice = this.#current();
    const before = slice.totalCount;
    addEncoded(slice, encoded);
    this.#count += slice.totalCount - before;
    this.#sum += sum;
  }

  snapshot(percentiles: readonly number[]): WindowSnapshot {
    const epoch = this.#epochNow();
    const merged = this.#merged;
    merged.reset();
    for (let slot = 0; slot < this.#slices.length; slot++) {
      if (this.#isLive(slot, epoch)) merged.add(this.#slices[slot] as Histogram);
    }
    const count = merged.totalCount;
    if (count === 0) return { count, percentiles: percentiles.map(() => Number.NaN), max: Number.NaN };
    // Every value is reported as the top of its HDR bucket (at most 0.1% above the value),
    // the max too: a decoded histogram only knows buckets, so this is the one convention
    // that gives the same answer whether values were recorded here or merged from an actor.
    return { count, percentiles: percentiles.map((percentile) => merged.getValueAtPercentile(percentile)), max: merged.getValueAtPercentile(100) };
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const slice of this.#slices) slice.destroy();
    this.#merged.destroy();
  }

  #epochNow(): number {
    return Math.floor(this.#now() / this.#sliceMs);
  }

  #isLive(slot: number, epoch: number): boolean {
    const held = this.#epochs[slot] as number;
    return held >= 0 && held > epoch - this.#slices.length;
  }

  #current(): Histogram {
    const epoch = this.#epochNow();
    const slot = epoch % this.#slices.length;
    const slice = this.#slices[slot] as Histogram;
    if (this.#epochs[slot] !== epoch) {
      slice.reset();
      this.#epochs[slot] = epoch;
    }
    return slice;
  }
}
