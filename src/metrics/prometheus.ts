/**
 * The Prometheus exposition (GET /metrics), built with prom-client. Every floodgate_*
 * series is a custom collector that reads EngineMetrics when scraped, so the hot paths
 * only bump plain numbers and nothing is computed between scrapes.
 *
 * Naming: `floodgate_<what>_<unit>`, base units (seconds, bytes, ratio), counters end in
 * `_total`. Label values are bounded: `code` is an error-catalogue code, `route` one of
 * the four ingest routes, `status` an HTTP status Floodgate sends, `actor` an actor index;
 * every value is exported from start-up, at 0 (src/metrics/label-values.ts).
 *
 * The latency summaries are not prom-client Summaries: those compute quantiles per
 * process, and aggregating them sums their quantiles, which is wrong
 * (docs/decisions/0013-hdr-histograms-merged.md). Their quantiles come from the HDR windows
 * merged across threads; `_sum` and `_count` are exact totals since start. prom-client's
 * default process and Node.js metrics are collected here, on the main thread, once.
 */
import { collectDefaultMetrics, Registry, type Metric } from 'prom-client';
import type { EngineMetrics, LatencySeries } from './engine-metrics';
import { reportedQuantiles } from './engine-metrics';
import type { SlidingHistogram } from './sliding-histogram';

interface Sample {
  readonly metricName?: string;
  readonly labels: Record<string, string | number>;
  readonly value: number;
}

type SampleType = 'counter' | 'gauge' | 'summary';

/**
 * A metric object in the shape prom-client's Registry reads (name, help, type, get()).
 * The registry's TypeScript signature only names its own classes, hence the one cast.
 */
export function collector(name: string, help: string, type: SampleType, samples: () => Sample[]): Metric {
  const metric = {
    name,
    help,
    type,
    aggregator: 'sum',
    collect: () => undefined,
    get: async () => ({ name, help, type, aggregator: 'sum', values: samples() }),
  };
  return metric as unknown as Metric;
}

const lintFailingDefaults = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** Divisors from recorded units to exported ones (a division keeps 22127 µs as 0.022127 s). */
const microsPerSecond = 1e6;

function summary(metrics: EngineMetrics, series: LatencySeries, name: string, help: string, divisor: number): Metric {
  return collector(name, help, 'summary', () => {
    const window = metrics.windows[series];
    const snapshot = metrics.snapshot(series);
    // An empty window's quantiles are NaN, as Prometheus's own clients write them: left out,
    // they would vanish after a minute without traffic and reappear as new series.
    const samples: Sample[] = reportedQuantiles.map((quantile, i) => ({
      labels: { quantile },
      value: snapshot.count === 0 ? Number.NaN : (snapshot.percentiles[i] as number) / divisor,
    }));
    samples.push({ metricName: `${name}_sum`, labels: {}, value: window.sum / divisor });
    samples.push({ metricName: `${name}_count`, labels: {}, value: window.count });
    return samples;
  });
}

function perActor(values: readonly number[]): Sample[] {
  return values.map((value, actor) => ({ labels: { actor }, value }));
}

/**
 * A summary of a SlidingHistogram recorded in µs, exported in seconds: its quantiles over
 * the window, `_sum` and `_count` since start (stages with their own windows: delivery,
 * streams).
 */
export function windowSummary(name: string, help: string, histogramUs: SlidingHistogram, quantiles: readonly number[] = [0.5, 0.95, 0.99]): Metric {
  return collector(name, help, 'summary', () => {
    const snapshot = histogramUs.snapshot(quantiles.map((q) => q * 100));
    return [
      ...quantiles.map((quantile, k) => ({ labels: { quantile }, value: snapshot.count === 0 ? Number.NaN : (snapshot.percentiles[k] as number) / microsPerSecond })),
      { metricName: `${name}_sum`, labels: {}, value: histogramUs.sum / microsPerSecond },
      { metricName: `${name}_count`, labels: {}, value: histogramUs.count },
    ];
  });
}

export function createMetricsRegistry(metrics: EngineMetrics): Registry {
  const registry = new Registry();
  const { totals, sources } = metrics;
  const counter = (name: string, help: string, value: () => number): Metric => collector(name, help, 'counter', () => [{ labels: {}, value: value() }]);
  const gauge = (name: string, help: string, samples: () => Sample[]): Metric => collector(name, help, 'gauge', samples);
  const all: Metric[] = [
    counter('floodgate_events_received_total', 'Events decoded from ingest requests, valid or not.', () => totals.received),
    counter('floodgate_events_committed_total', 'Events whose row committed in PostgreSQL (from the actors\' acks: equals the rows stored).', () => totals.committed),
    counter('floodgate_events_duplicate_total', 'Events not written because the same event_id was already stored.', () => totals.duplicates),
    collector('floodgate_events_rejected_total', 'Events refused before reaching a ring, by error code (validation, overload, circuit open).', 'counter', () =>
      [...metrics.rejectedByCode].map(([code, value]) => ({ labels: { code }, value }))),
    counter('floodgate_events_dead_lettered_total', 'Events PostgreSQL refused, stored in dead_letters.', () => totals.deadLettered),
    counter('floodgate_events_failed_total', 'Events whose write failed after all retries (answered 503; clients retry).', () => totals.failed),
    collector('floodgate_requests_total', 'Ingest requests answered, by route and HTTP status.', 'counter', () =>
      [...metrics.requestsByRoute].flatMap(([route, byStatus]) => [...byStatus].map(([status, value]) => ({ labels: { route, status }, value })))),
    counter('floodgate_batch_write_failures_total', 'Batch write attempts that failed with a transient or fatal database error (each retry counts).', () => metrics.batchWriteFailures),
    summary(metrics, 'requestUs', 'floodgate_request_duration_seconds', 'Ingest request duration, receipt to answer written; quantiles over the last 50-60 s.', microsPerSecond),
    summary(metrics, 'commitLatencyUs', 'floodgate_commit_latency_seconds', 'Event receipt to its transaction committed; quantiles over the last 50-60 s.', microsPerSecond),
    summary(metrics, 'ringWaitUs', 'floodgate_ring_wait_seconds', 'Event receipt to its actor reading it from the ring; quantiles over the last 50-60 s.', microsPerSecond),
    summary(metrics, 'flushUs', 'floodgate_flush_duration_seconds', 'Duration of one batch write attempt (COPY and commit); quantiles over the last 50-60 s.', microsPerSecond),
    summary(metrics, 'batchRows', 'floodgate_batch_rows', 'Rows per batch write attempt; quantiles over the last 50-60 s.', 1),
    gauge('floodgate_sink_circuit_state', 'Sink circuit breaker: 0 closed (writes flow), 1 open (new writes refused with 503).', () => [{ labels: {}, value: sources.circuitState() }]),
    gauge('floodgate_ring_used_bytes', 'Bytes in use in each actor ring (queued events not yet read).', () => perActor(sources.rings().map((ring) => ring.usedBytes))),
    gauge('floodgate_ring_capacity_bytes', 'Data capacity of each actor ring.', () => perActor(sources.rings().map((ring) => ring.capacityBytes))),
    gauge('floodgate_ring_occupancy_ratio', 'Used over capacity of each actor ring (0-1); a full ring answers 503.', () => perActor(sources.rings().map((ring) => ring.usedBytes / ring.capacityBytes))),
    gauge('floodgate_actor_database_connected', 'Whether each actor\'s database connection worked on its last write (1) or was lost (0).', () => perActor(metrics.actorConnected.map(Number))),
    gauge('floodgate_database_up', 'Whether the readiness probe reached PostgreSQL on its last attempt.', () => [{ labels: {}, value: Number(sources.databaseUp()) }]),
    gauge('floodgate_queued_events', 'Events handed to the rings and not yet acknowledged by an actor.', () => [{ labels: {}, value: sources.queue().eventsOutstanding }]),
    gauge('floodgate_pending_requests', 'Durable-mode requests waiting for their commit.', () => [{ labels: {}, value: sources.queue().pendingRequests }]),
  ];
  for (const metric of all) registry.registerMetric(metric);
  collectDefaultMetrics({ register: registry });
  // prom-client also exports these as gauges named *_total, which `promtool check metrics`
  // flags (only counters may end in _total); the same numbers are in nodejs_active_handles,
  // nodejs_active_requests and nodejs_active_resources, by type.
  for (const name of lintFailingDefaults) registry.removeSingleMetric(name);
  return registry;
}

/**
 * The exposition text. prom-client writes a NaN value as "Nan" (its event-loop-lag gauges
 * do, before their first sample); the text format spells it "NaN".
 */
export async function renderExposition(registry: Registry): Promise<string> {
  return (await registry.metrics()).replace(/ Nan$/gm, ' NaN');
}
