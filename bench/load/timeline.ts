/**
 * Merges what the clients report each second into one timeline, per-phase summaries and
 * a whole-run summary. Percentiles always come from merged histograms, never from
 * averaging the clients' or the seconds' percentiles.
 */
import type { Histogram } from 'hdr-histogram-js';
import type { CpuSample } from '../common/proc-stats';
import { decodeHistogram, newLatencyHistogram, type IntervalStats } from './interval-stats';
import type { Phase, Scenario } from './scenario';

/**
 * A client's per-second counts (IntervalStats) summed over seconds and clients; errorSamples
 * keeps the first few distinct reasons requests failed without an answer.
 */
export type Counters = Omit<IntervalStats, 'second' | 'histogram' | 'sendLagHistogram' | 'cpuUs'> & {
  /** CPU time the client processes used, µs. */
  clientCpuUs: number;
};

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

interface SecondEntry {
  readonly counters: Counters;
  readonly histogram: Histogram;
  readonly sendLag: Histogram;
  reports: number;
}

/** Accumulates ticks by second; the histograms here are JS ones (no WASM memory to free). */
export class TimelineBuilder {
  readonly #seconds = new Map<number, SecondEntry>();
  readonly #totals = emptyCounters();

  /** Adds one client's second; returns how many clients have reported that second so far. */
  add(stats: IntervalStats): number {
    let entry = this.#seconds.get(stats.second);
    if (entry === undefined) {
      entry = { counters: emptyCounters(), histogram: newLatencyHistogram(), sendLag: newLatencyHistogram(), reports: 0 };
      this.#seconds.set(stats.second, entry);
    }
    const histogram = decodeHistogram(stats.histogram);
    entry.histogram.add(histogram);
    entry.sendLag.add(decodeHistogram(stats.sendLagHistogram));
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

  /**
   * The run's headline numbers: latency and counters over the seconds of every phase that
   * is not a warm-up (all of them when no phase is), and which seconds those were.
   */
  measured(scenario: Scenario): { latency: Histogram; sendLag: Histogram; counters: Counters; seconds: number[] } {
    const seconds = phaseSeconds(scenario).flatMap(({ phase, seconds: inPhase }) => (phase.warmup ? [] : inPhase));
    return { ...this.#merge(seconds), seconds };
  }

  /** Each phase's events/s and latency, from the whole seconds that fall inside it. */
  phases(scenario: Scenario): PhaseSummary[] {
    return phaseSeconds(scenario).map(({ phase, fromS, toS, seconds }) => {
      const { latency, counters } = this.#merge(seconds);
      const wholeSeconds = seconds.length;
      return {
        label: phase.label,
        fromS,
        toS,
        concurrency: phase.concurrency,
        ratePerS: phase.ratePerS,
        eventsPerS: wholeSeconds === 0 ? 0 : Math.round(counters.eventsAcknowledged / wholeSeconds),
        requestsPerS: wholeSeconds === 0 ? 0 : Math.round(counters.requests / wholeSeconds),
        latencyMs: summarizeLatency(latency),
      };
    });
  }

  #merge(seconds: readonly number[]): { latency: Histogram; sendLag: Histogram; counters: Counters } {
    const latency = newLatencyHistogram();
    const sendLag = newLatencyHistogram();
    const counters = emptyCounters();
    for (const second of seconds) {
      const entry = this.#seconds.get(second);
      if (entry === undefined) continue;
      latency.add(entry.histogram);
      sendLag.add(entry.sendLag);
      addCounters(counters, entry.counters);
    }
    return { latency, sendLag, counters };
  }
}

/** The whole seconds that fall inside each phase. */
function phaseSeconds(scenario: Scenario): { phase: Phase; fromS: number; toS: number; seconds: number[] }[] {
  let fromS = 0;
  return scenario.phases.map((phase) => {
    const toS = fromS + phase.durationS;
    const seconds: number[] = [];
    for (let second = Math.ceil(fromS); second + 1 <= toS + 1e-9; second++) seconds.push(second);
    const entry = { phase, fromS, toS, seconds };
    fromS = toS;
    return entry;
  });
}
