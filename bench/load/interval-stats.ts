/**
 * What a load client measured during one second of the run, in a shape that crosses the
 * process boundary as JSON: counters, and the latency histogram encoded the HdrHistogram
 * way (compressed, base64), so that the runner can merge clients and seconds exactly
 * instead of averaging percentiles (which is wrong).
 *
 * Latencies are recorded in microseconds with 3 significant digits, 1 µs to 10 minutes.
 */
import * as hdr from 'hdr-histogram-js';
import type { Route, Target } from './scenario';

export const latencyUnit = 'µs';
export const latencyHighestUs = 600_000_000;

export interface IntervalStats {
  /** Index of the second since the run's start (0-based). */
  second: number;
  requests: number;
  statuses: Record<string, number>;
  eventsSent: number;
  eventsAcknowledged: number;
  duplicatesReported: number;
  eventsRejected: number;
  timeouts: number;
  /** Requests that failed without an answer (connection refused/reset, bad framing). */
  errors: number;
  errorSamples: string[];
  /** Open model: scheduled requests dropped because the client's queue was full. */
  unsent: number;
  /** CPU time this client process used in the interval (user + system), µs. */
  cpuUs: number;
  histogram: string;
  /**
   * How late each request left the client: from its scheduled instant (open model) or
   * the moment its user was ready (closed model) to the write on its socket, encoded like
   * `histogram`. The latency above includes this lag, as it must (no coordinated
   * omission); kept apart, it tells how much of a tail the load machine itself made.
   */
  sendLagHistogram: string;
}

let wasmReady = false;

/**
 * WASM records in about half the time of the JS build
 * (docs/decisions/0013-hdr-histograms-merged.md); fall back if it fails.
 */
export async function initHistograms(): Promise<void> {
  if (wasmReady) return;
  try {
    await hdr.initWebAssembly();
    wasmReady = true;
  } catch {
    wasmReady = false;
  }
}

export function newLatencyHistogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: latencyHighestUs,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: wasmReady,
  });
}

export function decodeHistogram(encoded: string): hdr.Histogram {
  return hdr.decodeFromCompressedBase64(encoded, 32, wasmReady);
}

export function encodeHistogram(histogram: hdr.Histogram): string {
  return hdr.encodeIntoCompressedBase64(histogram);
}

export function emptyStats(second: number): Omit<IntervalStats, 'histogram' | 'sendLagHistogram'> {
  return {
    second,
    requests: 0,
    statuses: {},
    eventsSent: 0,
    eventsAcknowledged: 0,
    duplicatesReported: 0,
    eventsRejected: 0,
    timeouts: 0,
    errors: 0,
    errorSamples: [],
    unsent: 0,
    cpuUs: 0,
  };
}

export interface AnswerCount {
  readonly acknowledged: number;
  readonly duplicates: number;
  readonly rejected: number;
}

const countPatterns = {
  accepted: /"accepted":(\d+)/,
  duplicates: /"duplicates":(\d+)/,
  rejected: /"rejected":(\d+)/,
  errors: /"errors":(\d+)/,
} as const;

function field(body: string, name: keyof typeof countPatterns): number {
  const match = countPatterns[name].exec(body);
  return match === null ? 0 : Number(match[1]);
}

/**
 * Events the target acknowledged in one answer. Only 2xx answers acknowledge anything:
 * bulk and single v1 answers and the baseline say `accepted`; the webhook event route
 * says 202 accepted or 200 ignored (a duplicate); the webhook batch route nests the
 * counts under `results`.
 */
export function countAnswer(route: Route, target: Target, status: number, body: string): AnswerCount {
  if (status < 200 || status > 299) return { acknowledged: 0, duplicates: 0, rejected: 0 };
  if (route === '/webhook/events' && target === 'floodgate') {
    return status === 202 ? { acknowledged: 1, duplicates: 0, rejected: 0 } : { acknowledged: 0, duplicates: 1, rejected: 0 };
  }
  if (route === '/webhook/batch') {
    return { acknowledged: field(body, 'accepted'), duplicates: field(body, 'duplicates'), rejected: field(body, 'errors') };
  }
  return { acknowledged: field(body, 'accepted'), duplicates: field(body, 'duplicates'), rejected: field(body, 'rejected') };
}
