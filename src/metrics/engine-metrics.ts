/**
 * The main thread's view of how fast and how healthy the engine is: one object that every
 * stage reports to and that /metrics, /v1/stats and the dashboard read.
 *
 *   ingress ── eventsReceived / eventsRejected / requestAnswered ──┐
 *   actors ─── AckMessage (outcomes, exact) ───────────────────────┼──▶ EngineMetrics ──▶ /metrics
 *          └── StatsMessage (HDR histograms, once a second) ───────┘          │            /v1/stats
 *   engine ─── sources: rings, queue, circuit, database probe ─────────────────┘
 *
 * Counts of outcomes come from the acks, event by event, so `committed` equals the rows
 * the actors committed exactly; latency percentiles come from HDR histograms merged across
 * threads in sliding windows (src/metrics/sliding-histogram.ts).
 */
import type { ActorMessage, AckMessage, StatsMessage, StatsSeries } from '../actors/messages';
import type { AckMode } from '../config/config';
import { EventOutcome } from '../event';
import type { ErrorCode } from '../errors';
import type { IngestRoute } from '../ingress/ingest-handler';
import type { Logger } from '../log';
import { AnswerLog } from './answer-log';
import { rejectionCodes, requestRoutes, requestStatuses } from './label-values';
import { RateMeter } from './rate-meter';
import { SlidingHistogram, type WindowSnapshot } from './sliding-histogram';

export interface RingUsage {
  readonly usedBytes: number;
  readonly capacityBytes: number;
}

export interface MetricsSources {
  readonly actorCount: number;
  readonly ackMode: AckMode;
  readonly rings: () => readonly RingUsage[];
  readonly queue: () => { readonly eventsOutstanding: number; readonly pendingRequests: number };
  /** 0 while the sink circuit is closed (writes flow), 1 while it is open. */
  readonly circuitState: () => 0 | 1;
  /** Whether the readiness probe reached the database on its last attempt. */
  readonly databaseUp: () => boolean;
}

export interface EventTotals {
  received: number;
  committed: number;
  duplicates: number;
  rejected: number;
  deadLettered: number;
  failed: number;
}

export type LatencySeries = 'requestUs' | StatsSeries;
export const latencySeriesNames: readonly LatencySeries[] = ['requestUs', 'commitLatencyUs', 'ringWaitUs', 'flushUs', 'batchRows'];

/** Slices of 10 s, six of them: percentiles cover the last 50–60 s. */
export const windowSliceMs = 10_000;
export const windowSliceCount = 6;
/** Quantiles reported everywhere, and the same as HDR percentiles (written out: 0.999 * 100 is not 99.9). */
export const reportedQuantiles = [0.5, 0.9, 0.99, 0.999] as const;
export const reportedPercentiles = [50, 90, 99, 99.9] as const;

export class EngineMetrics {
  readonly sources: MetricsSources;
  readonly totals: EventTotals = { received: 0, committed: 0, duplicates: 0, rejected: 0, deadLettered: 0, failed: 0 };
  /** Events refused before reaching a ring, by error code: every catalogue code, from 0. */
  readonly rejectedByCode = new Map<ErrorCode, number>(rejectionCodes.map((code) => [code, 0]));
  /** Ingest requests answered, by route then HTTP status: every pair, from 0. */
  readonly requestsByRoute = new Map<IngestRoute, Map<number, number>>(
    requestRoutes.map((route) => [route, new Map(requestStatuses.map((status) => [status, 0]))]),
  );
  readonly windows: Readonly<Record<LatencySeries, SlidingHistogram>>;
  readonly actorConnected: boolean[];
  readonly startedAtMs = performance.now();
  batchWriteFailures = 0;
  readonly #committedRate: RateMeter;
  readonly #receivedRate: RateMeter;
  readonly #answerLog: AnswerLog;
  /** After close() the histograms' memory is freed: late reports are dropped, not recorded. */
  #closed = false;

  constructor(sources: MetricsSources, log: Logger, now: () => number = () => performance.now()) {
    this.sources = sources;
    const window = (): SlidingHistogram => new SlidingHistogram({ sliceMs: windowSliceMs, sliceCount: windowSliceCount, now });
    this.windows = { requestUs: window(), commitLatencyUs: window(), ringWaitUs: window(), flushUs: window(), batchRows: window() };
    this.actorConnected = Array.from({ length: sources.actorCount }, () => true);
    this.#committedRate = new RateMeter(now);
    this.#receivedRate = new RateMeter(now);
    this.#answerLog = new AnswerLog(log, now);
  }

  /** Ingress decoded `count` events from a request (valid or not). */
  eventsReceived(count: number): void {
    this.totals.received += count;
    this.#receivedRate.add(count);
  }

  /** `count` events were refused with `code` before reaching a ring. */
  eventsRejected(code: ErrorCode, count: number): void {
    this.totals.rejected += count;
    this.rejectedByCode.set(code, (this.rejectedByCode.get(code) ?? 0) + count);
  }

  /**
   * An ingest request was answered: its duration (receipt → answer written) goes into the
   * request-duration window; 5xx answers are logged at warn, 4xx at debug.
   */
  requestAnswered(route: IngestRoute, status: number, durationMs: number, requestId: string, code: string | null): void {
    if (this.#closed) return;
    this.windows.requestUs.record(durationMs * 1000);
    let byStatus = this.requestsByRoute.get(route);
    if (byStatus === undefined) this.requestsByRoute.set(route, (byStatus = new Map()));
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
    if (status >= 400) this.#answerLog.answered({ requestId, route, status, code, durationMs });
  }

  onActorMessage(message: ActorMessage): void {
    if (this.#closed) return;
    if (message.type === 'ack') this.#countOutcomes(message);
    else if (message.type === 'stats') this.#mergeStats(message);
    else if (message.type === 'fault') this.batchWriteFailures++;
  }

  committedPerSecond(windowMs: number): number {
    return this.#committedRate.perSecond(windowMs);
  }

  receivedPerSecond(windowMs: number): number {
    return this.#receivedRate.perSecond(windowMs);
  }

  snapshot(series: LatencySeries): WindowSnapshot {
    return this.windows[series].snapshot(reportedPercentiles);
  }

  uptimeS(): number {
    return (performance.now() - this.startedAtMs) / 1000;
  }

  /** Frees the WebAssembly memory of every histogram. */
  close(): void {
    this.#closed = true;
    for (const name of latencySeriesNames) this.windows[name].destroy();
  }

  #countOutcomes(message: AckMessage): void {
    let committed = 0;
    let duplicates = 0;
    let deadLettered = 0;
    let failed = 0;
    const outcomes = message.outcomes;
    for (let i = 0; i < message.count; i++) {
      const outcome = outcomes[i];
      if (outcome === EventOutcome.committed) committed++;
      else if (outcome === EventOutcome.duplicate) duplicates++;
      else if (outcome === EventOutcome.deadLettered) deadLettered++;
      else failed++;
    }
    this.totals.committed += committed;
    this.totals.duplicates += duplicates;
    this.totals.deadLettered += deadLettered;
    this.totals.failed += failed;
    if (committed > 0) this.#committedRate.add(committed);
  }

  #mergeStats(message: StatsMessage): void {
    this.actorConnected[message.actorIndex] = message.databaseConnected;
    for (const name of Object.keys(message.histograms) as StatsSeries[]) {
      const encoded = message.histograms[name];
      if (encoded !== null) this.windows[name].addEncoded(encoded, message.sums[name]);
    }
  }
}
