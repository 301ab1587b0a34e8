/**
 * GET /v1/stats: the engine's state as JSON for humans, scripts and the dashboard page.
 * Latencies are in milliseconds (µs precision), percentiles over the same 50–60 s window as
 * /metrics; `null` where the window holds no values yet.
 */
import type { EngineMetrics, LatencySeries } from './engine-metrics';
import { reportedPercentiles } from './engine-metrics';

export interface PercentileReport {
  readonly p50: number | null;
  readonly p90: number | null;
  readonly p99: number | null;
  readonly p999: number | null;
  readonly max: number | null;
  /** Values in the window. */
  readonly count: number;
}

function percentileReport(metrics: EngineMetrics, series: LatencySeries, scale: number): PercentileReport {
  const snapshot = metrics.snapshot(series);
  const value = (raw: number): number | null => (Number.isNaN(raw) ? null : Math.round(raw * scale * 1000) / 1000);
  const [p50, p90, p99, p999] = reportedPercentiles.map((_, i) => value(snapshot.percentiles[i] as number));
  return { p50: p50 ?? null, p90: p90 ?? null, p99: p99 ?? null, p999: p999 ?? null, max: value(snapshot.max), count: snapshot.count };
}

const round = (value: number, digits: number): number => Math.round(value * 10 ** digits) / 10 ** digits;

export function statsReport(metrics: EngineMetrics): Record<string, unknown> {
  const { sources, totals } = metrics;
  const queue = sources.queue();
  const microsToMs = 1e-3;
  return {
    uptime_s: round(metrics.uptimeS(), 1),
    ack_mode: sources.ackMode,
    rates: {
      committed_per_s_1s: round(metrics.committedPerSecond(1000), 1),
      committed_per_s_10s: round(metrics.committedPerSecond(10_000), 1),
      received_per_s_1s: round(metrics.receivedPerSecond(1000), 1),
      received_per_s_10s: round(metrics.receivedPerSecond(10_000), 1),
    },
    totals: {
      received: totals.received,
      committed: totals.committed,
      duplicates: totals.duplicates,
      rejected: totals.rejected,
      dead_lettered: totals.deadLettered,
      failed: totals.failed,
    },
    // Only the codes seen: /metrics carries the zeros for rate(), this report is for reading.
    rejected_by_code: Object.fromEntries([...metrics.rejectedByCode].filter(([, count]) => count > 0)),
    window_s: metrics.windows.requestUs.windowMs / 1000,
    request_duration_ms: percentileReport(metrics, 'requestUs', microsToMs),
    commit_latency_ms: percentileReport(metrics, 'commitLatencyUs', microsToMs),
    ring_wait_ms: percentileReport(metrics, 'ringWaitUs', microsToMs),
    flush_duration_ms: percentileReport(metrics, 'flushUs', microsToMs),
    batch_rows: percentileReport(metrics, 'batchRows', 1),
    rings: sources.rings().map((ring, actor) => ({
      actor,
      used_bytes: ring.usedBytes,
      capacity_bytes: ring.capacityBytes,
      occupancy: round(ring.usedBytes / ring.capacityBytes, 6),
    })),
    queue_depth: queue.eventsOutstanding,
    pending_requests: queue.pendingRequests,
    circuit: sources.circuitState() === 0 ? 'closed' : 'open',
    database: { up: sources.databaseUp(), actors_connected: [...metrics.actorConnected] },
  };
}
