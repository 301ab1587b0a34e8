/**
 * The engine's own view of a run, read from GET /v1/stats just before the runner stops it:
 * request duration (receipt → answer written), commit latency, ring wait, batch writes and
 * rows per batch as the engine measured them. Beside the clients' latency this splits a tail between the engine and what lies
 * outside it (the clients' send lag, the kernel, waiting for a core). The engine's
 * percentiles cover its own sliding window (`windowS`, 50–60 s), the end of the run; the
 * baseline has no such route and gets null.
 */
import type { PercentileReport } from '../../src/metrics/stats-report';

export interface EngineStats {
  readonly ackMode: string;
  readonly windowS: number;
  readonly requestMs: PercentileReport;
  readonly commitMs: PercentileReport;
  /** Ring push → the actor took the event. */
  readonly ringWaitMs: PercentileReport;
  /** One batch write attempt: COPY and commit. */
  readonly flushMs: PercentileReport;
  readonly batchRows: PercentileReport;
}

const fetchTimeoutMs = 2000;

/** `authorization`: the header value when the engine has keys (GET /v1/stats then needs `read`). */
export async function fetchEngineStats(host: string, port: number, authorization: string | null = null): Promise<EngineStats | null> {
  let body: Record<string, unknown>;
  try {
    const response = await fetch(`http://${host}:${port}/v1/stats`, { signal: AbortSignal.timeout(fetchTimeoutMs), headers: authorization === null ? {} : { authorization } });
    if (response.status !== 200) {
      await response.arrayBuffer();
      return null;
    }
    body = (await response.json()) as Record<string, unknown>;
  } catch {
    return null;
  }
  return {
    ackMode: String(body.ack_mode),
    windowS: Number(body.window_s),
    requestMs: body.request_duration_ms as PercentileReport,
    commitMs: body.commit_latency_ms as PercentileReport,
    ringWaitMs: body.ring_wait_ms as PercentileReport,
    flushMs: body.flush_duration_ms as PercentileReport,
    batchRows: body.batch_rows as PercentileReport,
  };
}
