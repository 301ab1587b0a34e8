/**
 * `@floodgate/client`: batching, retries and exactly-once for Floodgate's ingest API, over
 * HTTP or the WebSocket stream, with nothing beyond what Node 18+ and browsers provide.
 *
 *   const client = new FloodgateClient({ url: 'http://localhost:8080', apiKey });
 *   client.track({ event_type: 'page_view', actor_id: 'user-7' });
 *   await client.close(); // sends and acks everything, retries included
 *
 * The options are one schema (`optionRules`) with defaults in one object
 * (`clientDefaults`); unknown options are refused, every problem is reported at once,
 * naming the option, and the result is frozen.
 */
import {
  Batcher,
  FloodgateError,
  type BatcherSettings,
  type ClientStats,
  type FloodgateEventError,
  type RetrySettings,
  type SendBatch,
  type TrackEvent,
  type TrackReceipt,
} from './batcher';
import { httpTransport, WebSocketTransport, type FetchLike, type WebSocketConstructor } from './transports';

export {
  FloodgateBatchError,
  FloodgateError,
  FloodgateEventError,
  QueueFullError,
  TrackReceipt,
  backoffDelayMs,
  type BatchAck,
  type ClientStats,
  type EventErrorDetail,
  type OutgoingBatch,
  type RetrySettings,
  type SendBatch,
  type TrackEvent,
  type TrackResult,
  type TrackStatus,
} from './batcher';
export { httpOutcome, httpTransport, retryAfterMsOf, streamUrlOf, streamProtocol, type FetchLike, type WebSocketConstructor, type WebSocketLike } from './transports';

export interface FloodgateClientOptions {
  /** The engine's base URL, `http(s)://host:port` (or `ws(s)://…` for the stream). */
  readonly url: string;
  /** An API key with the `ingest` scope (`fgk_…`); omit for open ingest. */
  readonly apiKey?: string;
  /** `'http'`, `'websocket'`, or a function that sends one batch (tests, benchmarks, other transports). */
  readonly transport?: 'http' | 'websocket' | SendBatch;
  /** HTTP: gzip each batch once (`Content-Encoding: gzip`). */
  readonly gzip?: boolean;
  readonly batchEvents?: number;
  readonly batchBytes?: number;
  readonly flushIntervalMs?: number;
  readonly queueEventsMax?: number;
  readonly batchesInFlightMax?: number;
  readonly timeoutMs?: number;
  readonly retry?: Partial<RetrySettings>;
  /** Called once per failed event, beside the event's receipt. */
  readonly onError?: (error: FloodgateEventError) => void;
  readonly WebSocket?: WebSocketConstructor;
  readonly fetch?: FetchLike;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** Every default in one place; the README's options table repeats these. */
export const clientDefaults = Object.freeze({
  transport: 'http' as const,
  gzip: false,
  /** events: a batch is sent once it holds this many… */
  batchEvents: 100,
  /** characters of event JSON (≈ bytes for ASCII): …or this many… */
  batchBytes: 512 * KiB,
  /** ms: …or once its first event has waited this long. */
  flushIntervalMs: 1_000,
  /** events tracked and not yet settled; track() beyond it throws QueueFullError. */
  queueEventsMax: 10_000,
  /** batches sent and not yet answered: HTTP requests at once, or batches in flight on the stream. */
  batchesInFlightMax: { http: 4, websocket: 16 },
  /** ms: longest wait for one answer (HTTP) or ack (WebSocket); above the engine's 30 s ackTimeoutMs. */
  timeoutMs: 40_000,
  retry: Object.freeze({ attemptsMax: 10, baseMs: 100, maxMs: 30_000 }),
});

interface IntegerRule {
  readonly min: number;
  readonly max: number;
  readonly unit: string;
  readonly why?: string;
}

/** The engine's own limits bound these (docs/configuration.md of the engine). */
const optionRules: Readonly<Record<string, IntegerRule>> = {
  batchEvents: { min: 1, max: 5_000, unit: 'events', why: 'the engine refuses requests over FLOODGATE_EVENTS_PER_REQUEST_MAX, 5000 by default' },
  batchBytes: { min: KiB, max: 3 * MiB, unit: 'characters', why: 'up to 3 UTF-8 bytes each must stay under the engine\'s 10 MiB body limit' },
  flushIntervalMs: { min: 0, max: 600_000, unit: 'ms' },
  queueEventsMax: { min: 1, max: 10_000_000, unit: 'events' },
  batchesInFlightMax: { min: 1, max: 1_024, unit: 'batches' },
  timeoutMs: { min: 100, max: 600_000, unit: 'ms' },
  'retry.attemptsMax': { min: 1, max: 1_000, unit: 'attempts' },
  'retry.baseMs': { min: 1, max: 60_000, unit: 'ms' },
  'retry.maxMs': { min: 1, max: 3_600_000, unit: 'ms' },
};

const knownOptions = new Set(['url', 'apiKey', 'transport', 'gzip', 'onError', 'WebSocket', 'fetch', 'retry', ...Object.keys(optionRules)]);
const knownRetryOptions = new Set(['attemptsMax', 'baseMs', 'maxMs']);

interface ResolvedOptions {
  readonly url: string;
  readonly apiKey: string | null;
  readonly transport: 'http' | 'websocket' | SendBatch;
  readonly gzip: boolean;
  readonly timeoutMs: number;
  readonly batcher: BatcherSettings;
  readonly WebSocket: WebSocketConstructor | null;
  readonly fetch: FetchLike | null;
}

function checkInteger(problems: string[], name: string, value: unknown): void {
  const rule = optionRules[name]!;
  if (typeof value === 'number' && Number.isInteger(value) && value >= rule.min && value <= rule.max) return;
  const why = rule.why === undefined ? '' : ` (${rule.why})`;
  problems.push(`${name}: must be an integer in ${rule.min}..${rule.max} ${rule.unit}${why}, got ${String(value)}`);
}

function integerOption(problems: string[], name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  checkInteger(problems, name, value);
  return value;
}

function resolveRetry(problems: string[], retry: Partial<RetrySettings> | undefined): RetrySettings {
  if (retry !== undefined && (retry === null || typeof retry !== 'object')) problems.push('retry: must be an object { attemptsMax, baseMs, maxMs }');
  const given = retry ?? {};
  for (const key of Object.keys(given)) if (!knownRetryOptions.has(key)) problems.push(`retry.${key}: unknown option`);
  const defaults = clientDefaults.retry;
  const resolved = {
    attemptsMax: integerOption(problems, 'retry.attemptsMax', given.attemptsMax, defaults.attemptsMax),
    baseMs: integerOption(problems, 'retry.baseMs', given.baseMs, defaults.baseMs),
    maxMs: integerOption(problems, 'retry.maxMs', given.maxMs, defaults.maxMs),
  };
  if (resolved.maxMs < resolved.baseMs) problems.push(`retry.maxMs: must be at least retry.baseMs (${resolved.baseMs}), got ${resolved.maxMs}`);
  return Object.freeze(resolved);
}

function resolveTransport(problems: string[], options: FloodgateClientOptions): ResolvedOptions['transport'] {
  const transport = options.transport ?? clientDefaults.transport;
  if (transport !== 'http' && transport !== 'websocket' && typeof transport !== 'function') {
    problems.push(`transport: must be 'http', 'websocket' or a function (batch) => Promise<BatchAck>, got ${String(transport)}`);
  }
  if (transport === 'websocket' && typeof (options.WebSocket ?? globalThis.WebSocket) !== 'function') {
    problems.push("WebSocket: this runtime has no global WebSocket (Node < 22): pass one, e.g. `import { WebSocket } from 'undici'`");
  }
  if (transport === 'http' && typeof (options.fetch ?? globalThis.fetch) !== 'function') problems.push('fetch: this runtime has no global fetch: pass one');
  if (options.gzip === true && transport !== 'http') problems.push('gzip: only the HTTP transport compresses (the stream sends text frames)');
  return transport;
}

function resolveUrl(problems: string[], url: unknown): string {
  if (typeof url !== 'string' || !/^(https?|wss?):\/\/[^/]/i.test(url)) {
    problems.push(`url: must be the engine's base URL, http(s)://host:port or ws(s)://host:port, got ${String(url)}`);
    return '';
  }
  return url;
}

/** Validates every option at once and returns the settings, frozen. */
export function resolveOptions(options: FloodgateClientOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new FloodgateError('ERR_CLIENT_OPTIONS', 'new FloodgateClient(options): options must be an object with a url');
  }
  const problems: string[] = [];
  for (const key of Object.keys(options)) if (!knownOptions.has(key)) problems.push(`${key}: unknown option`);
  const url = resolveUrl(problems, options.url);
  if (options.apiKey !== undefined && (typeof options.apiKey !== 'string' || !/^[\x21-\x7e]+$/.test(options.apiKey))) {
    problems.push('apiKey: must be a non-empty string of printable ASCII (fgk_…)');
  }
  if (options.gzip !== undefined && typeof options.gzip !== 'boolean') problems.push(`gzip: must be true or false, got ${String(options.gzip)}`);
  if (options.onError !== undefined && typeof options.onError !== 'function') problems.push('onError: must be a function (error) => void');
  const transport = resolveTransport(problems, options);
  const inFlightDefault = transport === 'websocket' ? clientDefaults.batchesInFlightMax.websocket : clientDefaults.batchesInFlightMax.http;
  const batcher: BatcherSettings = Object.freeze({
    batchEvents: integerOption(problems, 'batchEvents', options.batchEvents, clientDefaults.batchEvents),
    batchBytes: integerOption(problems, 'batchBytes', options.batchBytes, clientDefaults.batchBytes),
    flushIntervalMs: integerOption(problems, 'flushIntervalMs', options.flushIntervalMs, clientDefaults.flushIntervalMs),
    queueEventsMax: integerOption(problems, 'queueEventsMax', options.queueEventsMax, clientDefaults.queueEventsMax),
    batchesInFlightMax: integerOption(problems, 'batchesInFlightMax', options.batchesInFlightMax, inFlightDefault),
    retry: resolveRetry(problems, options.retry),
    onError: options.onError ?? null,
    randomUUID: uuidSource(problems),
  });
  const timeoutMs = integerOption(problems, 'timeoutMs', options.timeoutMs, clientDefaults.timeoutMs);
  if (problems.length > 0) throw new FloodgateError('ERR_CLIENT_OPTIONS', `invalid FloodgateClient options:\n  ${problems.join('\n  ')}`);
  return Object.freeze({
    url, apiKey: options.apiKey ?? null, transport, gzip: options.gzip ?? false, timeoutMs, batcher,
    WebSocket: options.WebSocket ?? null, fetch: options.fetch ?? null,
  });
}

/**
 * crypto.randomUUID where it exists (Node 19+, browsers in secure contexts); otherwise a
 * version-4 UUID from crypto.getRandomValues (plain-http pages). A batch_id must never
 * repeat, so there is no Math.random fallback.
 */
function uuidSource(problems: string[]): () => string {
  const webCrypto = (globalThis as { crypto?: { randomUUID?: () => string; getRandomValues?: (bytes: Uint8Array) => Uint8Array } }).crypto;
  if (typeof webCrypto?.randomUUID === 'function') return () => webCrypto.randomUUID!();
  const getRandomValues = webCrypto?.getRandomValues;
  if (typeof getRandomValues !== 'function') {
    problems.push('crypto: this runtime has no crypto.getRandomValues for batch ids (Node 18: run with --experimental-global-webcrypto)');
    return () => '';
  }
  return () => {
    const bytes = getRandomValues.call(webCrypto, new Uint8Array(16));
    bytes[6] = (bytes[6]! & 0x0f) | 0x40;
    bytes[8] = (bytes[8]! & 0x3f) | 0x80;
    const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  };
}

export class FloodgateClient {
  readonly #batcher: Batcher;
  readonly #closeTransport: () => Promise<void>;
  #closing: Promise<void> | null = null;

  constructor(options: FloodgateClientOptions) {
    const resolved = resolveOptions(options);
    let send: SendBatch;
    let closeTransport = (): Promise<void> => Promise.resolve();
    if (typeof resolved.transport === 'function') {
      send = resolved.transport;
    } else if (resolved.transport === 'websocket') {
      const WebSocket = resolved.WebSocket ?? (globalThis.WebSocket as unknown as WebSocketConstructor);
      const stream = new WebSocketTransport({ url: resolved.url, apiKey: resolved.apiKey, timeoutMs: resolved.timeoutMs, WebSocket });
      send = stream.send;
      closeTransport = () => stream.close();
    } else {
      const fetch = resolved.fetch ?? (globalThis.fetch as unknown as FetchLike);
      send = httpTransport({ url: resolved.url, apiKey: resolved.apiKey, gzip: resolved.gzip, timeoutMs: resolved.timeoutMs, fetch });
    }
    this.#batcher = new Batcher(resolved.batcher, send);
    this.#closeTransport = closeTransport;
  }

  /**
   * Buffers one event and returns its receipt: `await` it for `{batchId, index, eventId,
   * status}` or a FloodgateEventError; ignoring it is fine. Throws QueueFullError when
   * queueEventsMax events are unsettled, ERR_CLIENT_CLOSED after close(), and TypeError
   * for an event without a string event_type or one JSON.stringify refuses.
   */
  track(event: TrackEvent): TrackReceipt {
    return this.#batcher.track(event);
  }

  /** Sends what is buffered and resolves once every batch formed so far has its outcome. */
  flush(): Promise<void> {
    return this.#batcher.flush();
  }

  /** Stops taking events, sends and settles everything (retries included), then closes the transport. */
  close(): Promise<void> {
    this.#closing ??= this.#batcher.close().then(() => this.#closeTransport());
    return this.#closing;
  }

  /** Counters since the client was made, and the queue right now. */
  stats(): ClientStats {
    return this.#batcher.stats();
  }
}
