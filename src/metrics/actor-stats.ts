/**
 * What an actor thread measures, recorded locally and shipped to the main thread once per
 * second as a StatsMessage holding the encoded histograms of that second (deltas: each
 * histogram is reset after encoding), so the main thread can merge them exactly.
 *
 *   ring wait        envelope received by ingress → read from the ring by the actor
 *   commit latency   event received by ingress → its transaction committed
 *   flush duration   one write attempt of a batch (COPY and commit, or the slower paths)
 *   batch rows       rows per write attempt
 *
 * Telemetry is per envelope or per batch, never per event: events of one envelope share
 * their receipt time, so a run of them costs one recordValueWithCount. All times are
 * microseconds from src/metrics/clock.ts.
 */
import type { Histogram } from 'hdr-histogram-js';
import type { StatsMessage, StatsSeries } from '../actors/messages';
import { clockUs } from './clock';
import { createHistogram, encodeHistogram, trackable } from './hdr';

export const statsSeriesNames = ['ringWaitUs', 'commitLatencyUs', 'flushUs', 'batchRows'] as const satisfies readonly StatsSeries[];

class Series {
  readonly histogram: Histogram = createHistogram();
  /** Exact sum of the recorded values since the last message (the histogram's is bucketed). */
  sum = 0;
  recorded = false;

  record(value: number, count: number): void {
    const clamped = trackable(value);
    this.histogram.recordValueWithCount(clamped, count);
    this.sum += clamped * count;
    this.recorded = true;
  }
}

export class ActorStats {
  readonly #actorIndex: number;
  readonly #series: Record<StatsSeries, Series>;
  #databaseConnected = true;
  #destroyed = false;

  constructor(actorIndex: number) {
    this.#actorIndex = actorIndex;
    this.#series = { ringWaitUs: new Series(), commitLatencyUs: new Series(), flushUs: new Series(), batchRows: new Series() };
  }

  /** One envelope of `events` events, received by ingress at `receivedAtUs`, was just read. */
  envelopeRead(receivedAtUs: number, events: number): void {
    this.#series.ringWaitUs.record(clockUs() - receivedAtUs, events);
  }

  /** `count` events received at `receivedAtUs` committed at `committedAtUs`. */
  committed(receivedAtUs: number, committedAtUs: number, count: number): void {
    this.#series.commitLatencyUs.record(committedAtUs - receivedAtUs, count);
  }

  /**
   * One write attempt of `rows` rows took `durationUs`. `connected` is false when it failed
   * because the connection was lost or refused; any other outcome proves it works.
   */
  writeAttempted(rows: number, durationUs: number, connected: boolean): void {
    this.#series.flushUs.record(durationUs, 1);
    this.#series.batchRows.record(rows, 1);
    this.#databaseConnected = connected;
  }

  /**
   * The message for the main thread, with everything recorded since the previous one;
   * histograms that recorded nothing are sent as null (no encoding cost when idle).
   */
  takeMessage(): StatsMessage {
    const histograms: Partial<Record<StatsSeries, Uint8Array | null>> = {};
    const sums: Partial<Record<StatsSeries, number>> = {};
    for (const name of statsSeriesNames) {
      const series = this.#series[name];
      histograms[name] = series.recorded ? encodeHistogram(series.histogram) : null;
      sums[name] = series.sum;
      series.histogram.reset();
      series.sum = 0;
      series.recorded = false;
    }
    return {
      type: 'stats',
      actorIndex: this.#actorIndex,
      databaseConnected: this.#databaseConnected,
      histograms: histograms as Record<StatsSeries, Uint8Array | null>,
      sums: sums as Record<StatsSeries, number>,
    };
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const name of statsSeriesNames) this.#series[name].histogram.destroy();
  }
}
