/**
 * Merges what the clients report each second into one timeline, per-phase summaries and
 * a whole-run summary. Percentiles always come from merged histograms, never from
 * averaging the clients' or the seconds' percentiles.
 */
import type { Histogram } from 'hdr-histogram-js';
import type { CpuSample } from '../common/proc-stats';
import { decodeHistogram, encodeHistogram, newLatencyHistogram, type IntervalStats } from './interval-stats';
import type { Scenario } from './scenario';

export interface Counters {
  requests: number;
  statuses: Record<string, number>;
  eventsSent: number;
  eventsAcknowledged: number;
  duplicatesReported: number;
  eventsRejected: number;
  timeouts: number;
  errors: number;
  unsent: number;
  clientCpuUs: number;
  /** The first few distinct reasons requests failed without an answer. */
  errorSamples: string[];
}

export interface LatencySummaryMs {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

export interface TimelinePoint {
  readonly second: number;
  readonly requests: number;
  readonly eventsAcknowledged: number;
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  readonly latencyMs: LatencySummaryMs;
  readonly clientCpuCores: number;
  readonly cpu: CpuSample | null;
}

export interface PhaseSummary {
  readonly label: string;
  readonly fromS: number;
  readonly toS: number;
  readonly concurrency: number | null;
  readonly ratePerS: number | null;
  readonly eventsPerS: number;
  readonly requestsPerS: number;
  readonly latencyMs: LatencySummaryMs;
}

const errorSamplesKept = 10;

export function emptyCounters(): Counters {
  return { requests: 0, statuses: {}, eventsSent: 0, eventsAcknowledged: 0, duplicatesReported: 0, eventsRejected: 0, timeouts: 0, errors: 0, unsent: 0, clientCpuUs: 0, errorSamples: [] };
}

export function addCounters(into: Counters, stats: IntervalStats | Counters): void {
  into.requests += stats.requests;
  for (const [status, count] of Object.entries(stats.statuses)) into.statuses[status] = (into.statuses[status] ?? 0) + count;
  into.eventsSent += stats.eventsSent;
  into.eventsAcknowledged += stats.eventsAcknowledged;
  into.duplicatesReported += stats.duplicatesReported;
  into.eventsRejected += stats.eventsRejected;
  into.timeouts += stats.timeouts;
  into.errors += stats.errors;
  into.unsent += stats.unsent;
  into.clientCpuUs += 'cpuUs' in stats ? stats.cpuUs : stats.clientCpuUs;
  for (const sample of stats.errorSamples) {
    if (into.errorSamples.length < errorSamplesKept && !into.errorSamples.includes(sample)) into.errorSamples.push(sample);
  }
}

export function summarizeLatency(histogram: Histogram): LatencySummaryMs {
  const ms = (us: number): number => Math.round(us) / 1000;
  if (histogram.totalCount === 0) return { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  return {
    count: histogram.totalCount,
    p50: ms(histogram.getValueAtPercentile(50)),
    p90: ms(histogram.getValueAtPercentile(90)),
    p99: ms(histogram.getValueAtPercentile(99)),
    p999: ms(histogram.getValueAtPercentile(99.9)),
    max: ms(histogram.maxValue),
    mean: ms(histogram.mean),
  };
}

/** Accumulates ticks by second; the histograms here are JS ones (no WASM memory to free). */
export class TimelineBuilder {
  readonly #seconds = new Map<number, { counters: Counters; histogram: Histogram; reports: number }>();
  readonly #total = newLatencyHistogram();
  readonly #totals = emptyCounters();

  /** Adds one client's second; returns how many clients have reported that second so far. */
  add(stats: IntervalStats): number {
    let entry = this.#seconds.get(stats.second);
    if (entry === undefined) {
      entry = { counters: emptyCounters(), histogram: newLatencyHistogram(), reports: 0 };
      this.#seconds.set(stats.second, entry);
    }
    const histogram = decodeHistogram(stats.histogram);
    entry.histogram.add(histogram);
    this.#total.add(histogram);
    addCounters(entry.counters, stats);
    addCounters(this.#totals, stats);
    entry.reports += 1;
    return entry.reports;
  }

  point(second: number, cpu: CpuSample | null): TimelinePoint {
    const entry = this.#seconds.get(second);
    const counters = entry?.counters ?? emptyCounters();
    const non2xx = Object.entries(counters.statuses).reduce((sum, [status, count]) => sum + (status.startsWith('2') ? 0 : count), 0);
    return {
      second,
      requests: counters.requests,
      eventsAcknowledged: counters.eventsAcknowledged,
      errors: counters.errors,
      timeouts: counters.timeouts,
      non2xx,
      latencyMs: entry === undefined ? summarizeLatency(newLatencyHistogram()) : summarizeLatency(entry.histogram),
      clientCpuCores: counters.clientCpuUs / 1e6,
      cpu,
    };
  }

  seconds(): number[] {
    return [...this.#seconds.keys()].sort((a, b) => a - b);
  }

  get totals(): Counters {
    return this.#totals;
  }

  totalLatency(): LatencySummaryMs {
    return summarizeLatency(this.#total);
  }

  encodedTotalHistogram(): string {
    return encodeHistogram(this.#total);
  }

  /** Each phase's events/s and latency, from the whole seconds that fall inside it. */
  phases(scenario: Scenario): PhaseSummary[] {
    let fromS = 0;
    return scenario.phases.map((phase) => {
      const toS = fromS + phase.durationS;
      const histogram = newLatencyHistogram();
      const counters = emptyCounters();
      let wholeSeconds = 0;
      for (let second = Math.ceil(fromS); second + 1 <= toS + 1e-9; second++) {
        const entry = this.#seconds.get(second);
        wholeSeconds += 1;
        if (entry === undefined) continue;
        histogram.add(entry.histogram);
        addCounters(counters, entry.counters);
      }
      const summary: PhaseSummary = {
        label: phase.label,
        fromS,
        toS,
        concurrency: phase.concurrency,
        ratePerS: phase.ratePerS,
        eventsPerS: wholeSeconds === 0 ? 0 : Math.round(counters.eventsAcknowledged / wholeSeconds),
        requestsPerS: wholeSeconds === 0 ? 0 : Math.round(counters.requests / wholeSeconds),
        latencyMs: summarizeLatency(histogram),
      };
      fromS = toS;
      return summary;
    });
  }
}
