/**
 * The SDK's core, whatever the transport: events are serialised once, in `track()`, into
 * the open batch; the batch is sealed (its `batch_id` drawn) when it reaches batchEvents or
 * batchBytes, when flushIntervalMs has passed since its first event, or on flush()/close(),
 * and it never changes after that, so every resend carries the same key and the same bytes.
 *
 *   track() ─▶ open batch ──seal──▶ ready FIFO ──▶ in flight (≤ batchesInFlightMax) ──▶ settled
 *                                      ▲                  │                    receipts, onError
 *                                      └──── backoff ◀────┘ retriable failure, attempt < attemptsMax
 *
 * Per-event work is one JSON.stringify, two array pushes and one small receipt object; a
 * promise exists only for a receipt that is awaited, and telemetry is counted per batch.
 */

/** One event as `track()` takes it (docs/api.md in the engine's repository has the limits). */
export interface TrackEvent {
  /** 1–128 characters; required. */
  event_type: string;
  /** 1–128 characters. Without it the engine derives one from the batch_id and the event's index. */
  event_id?: string;
  /** 1–64 characters; the engine's default is `default`. */
  source?: string;
  /** ≤ 256 characters. */
  actor_id?: string;
  /** ISO-8601 with an offset, or epoch milliseconds; the SDK sets `Date.now()` when absent. */
  timestamp?: string | number;
  /** A JSON object, ≤ 32 KiB encoded. */
  attributes?: Record<string, unknown>;
}

/** One entry of an answer's `errors`: the event at `index` of the batch was refused. */
export interface EventErrorDetail {
  readonly index: number;
  readonly field: string | null;
  readonly code: string;
  readonly message: string;
}

/** What a transport returns for a batch the engine answered with per-event results. */
export interface BatchAck {
  readonly accepted: number;
  readonly duplicates: number;
  readonly errors: readonly EventErrorDetail[];
}

/** A sealed batch as a transport sees it. */
export interface OutgoingBatch {
  readonly batchId: string;
  readonly eventCount: number;
  /** The events as one JSON array text, `[{…},{…}]`, built once when the batch was sealed. */
  readonly eventsJson: string;
  /** Failed attempts before this one: 0 on the first send. */
  readonly attempt: number;
}

/**
 * A transport: sends one batch and resolves with the engine's per-event results, or
 * rejects. A `FloodgateBatchError` says whether to retry; any other rejection is taken as
 * a network error and retried.
 */
export type SendBatch = (batch: OutgoingBatch) => Promise<BatchAck>;

/** How a stored event was counted: `stored` when its batch held both kinds and the engine counts them per batch. */
export type TrackStatus = 'accepted' | 'duplicate' | 'stored';

export interface TrackResult {
  readonly batchId: string;
  readonly index: number;
  /** The event's own `event_id`, or null when the engine derived it from batchId and index. */
  readonly eventId: string | null;
  readonly status: TrackStatus;
}

/** Every error of the SDK carries a stable `code`; match on it, not on the class. */
export class FloodgateError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FloodgateError';
    this.code = code;
  }
}

/** A batch-level failure: the engine's refusal (`status` and its code) or the SDK's own. */
export class FloodgateBatchError extends FloodgateError {
  /** The HTTP status, or null (network error, timeout, WebSocket nack or close). */
  readonly status: number | null;
  readonly retriable: boolean;
  /** The engine's Retry-After (HTTP) or retry_after_ms (WebSocket nack), when given. */
  readonly retryAfterMs: number | null;
  constructor(code: string, message: string, detail: { status?: number | null; retriable: boolean; retryAfterMs?: number | null; cause?: unknown }) {
    super(code, message, detail.cause === undefined ? undefined : { cause: detail.cause });
    this.name = 'FloodgateBatchError';
    this.status = detail.status ?? null;
    this.retriable = detail.retriable;
    this.retryAfterMs = detail.retryAfterMs ?? null;
  }
}

/** One event failed: refused by the engine (`field` names the field) or its batch failed. */
export class FloodgateEventError extends FloodgateError {
  readonly field: string | null;
  readonly batchId: string;
  readonly index: number;
  readonly event: TrackEvent;
  constructor(detail: EventErrorDetail, batchId: string, event: TrackEvent, cause?: FloodgateBatchError) {
    super(detail.code, detail.message, cause === undefined ? undefined : { cause });
    this.name = 'FloodgateEventError';
    this.field = detail.field;
    this.batchId = batchId;
    this.index = detail.index;
    this.event = event;
  }
}

/** `track()` when queueEventsMax events are already tracked and not yet settled. */
export class QueueFullError extends FloodgateError {
  readonly queueEventsMax: number;
  constructor(queueEventsMax: number) {
    super('ERR_CLIENT_QUEUE_FULL', `the client holds ${queueEventsMax} unsettled events (queueEventsMax); the event was not taken: await flush() and track it again`);
    this.name = 'QueueFullError';
    this.queueEventsMax = queueEventsMax;
  }
}

/**
 * The one place that decides what a failed attempt means. Transports map the engine's
 * answers onto FloodgateBatchError (`retriable`); here the batch is retried or failed.
 *
 * | outcome                                             | retriable | the batch              |
 * | --------------------------------------------------- | --------- | ---------------------- |
 * | network error, timeout, WebSocket closed            | yes       | resent after backoff   |
 * | HTTP 408, 429, 5xx; nack with retry_after_ms        | yes       | resent after the hint  |
 * | ack whose errors hold ERR_EVENT_WRITE_FAILED        | yes       | resent whole (dedupe)  |
 * | HTTP 400 with `errors` (every event invalid)        | —         | an ack: events fail    |
 * | HTTP 400 without errors, 401, 403, 404, 413, 415…   | no        | its events fail        |
 * | nack without retry_after_ms                         | no        | its events fail        |
 * | attemptsMax attempts failed                         | —         | ERR_CLIENT_RETRIES_EXHAUSTED |
 */
export function asBatchError(error: unknown): FloodgateBatchError {
  if (error instanceof FloodgateBatchError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new FloodgateBatchError('ERR_CLIENT_NETWORK', `sending the batch failed: ${message}`, { retriable: true, cause: error });
}

/** A transport that throws instead of rejecting is treated alike. */
function sendSafely(send: SendBatch, batch: OutgoingBatch): Promise<BatchAck> {
  try {
    return send(batch);
  } catch (error) {
    return Promise.reject(error);
  }
}

/** HTTP statuses worth another attempt: the engine was busy, slow or down, not the batch wrong. */
export function isRetriableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Exponential backoff with full jitter, never sooner than the engine's hint. */
export function backoffDelayMs(attempt: number, retry: RetrySettings, retryAfterMs: number | null, random: () => number = Math.random): number {
  const ceilingMs = Math.min(retry.maxMs, retry.baseMs * 2 ** Math.min(attempt - 1, 30));
  return Math.max(retryAfterMs ?? 0, Math.floor(random() * ceilingMs));
}

export interface RetrySettings {
  /** Attempts per batch in all, the first send included. */
  readonly attemptsMax: number;
  readonly baseMs: number;
  readonly maxMs: number;
}

export interface BatcherSettings {
  readonly batchEvents: number;
  readonly batchBytes: number;
  readonly flushIntervalMs: number;
  readonly queueEventsMax: number;
  readonly batchesInFlightMax: number;
  readonly retry: RetrySettings;
  readonly onError: ((error: FloodgateEventError) => void) | null;
  readonly randomUUID: () => string;
}

export interface ClientStats {
  /** Events taken by track(). */
  readonly tracked: number;
  readonly accepted: number;
  readonly duplicates: number;
  /** Events that failed: refused by the engine, or their batch failed. */
  readonly failed: number;
  /** Events tracked and not yet settled (the queue queueEventsMax bounds). */
  readonly queued: number;
  readonly batchesSent: number;
  readonly batchesRetried: number;
  readonly batchesInFlight: number;
}

type BatchState = 'open' | 'ready' | 'in-flight' | 'backoff' | 'settled';

/** A batch from its first event to its outcome. Sealed = batchId drawn and eventsJson built. */
class Batch implements OutgoingBatch {
  batchId = '';
  eventCount = 0;
  eventsJson = '';
  attempt = 0;
  state: BatchState = 'open';
  chars = 0;
  readonly parts: string[] = [];
  readonly events: TrackEvent[] = [];
  status: TrackStatus = 'accepted';
  /** Set when the whole batch failed. */
  failure: FloodgateBatchError | null = null;
  /** Per-event refusals by index, from the ack. */
  refusals: Map<number, EventErrorDetail> | null = null;
  #eventErrors: Map<number, FloodgateEventError> | null = null;
  #settled: Promise<void> | null = null;
  #resolveSettled: (() => void) | null = null;

  /** Resolves once the batch has its outcome; made on first demand, one per batch. */
  settled(): Promise<void> {
    if (this.#settled === null) {
      this.#settled = this.state === 'settled' ? Promise.resolve() : new Promise((resolve) => (this.#resolveSettled = resolve));
    }
    return this.#settled;
  }

  markSettled(): void {
    this.state = 'settled';
    this.#resolveSettled?.();
  }

  /** The error of the event at `index`, or null when it was stored. */
  errorAt(index: number): FloodgateEventError | null {
    const cached = this.#eventErrors?.get(index);
    if (cached !== undefined) return cached;
    const failure = this.failure;
    const refusal = this.refusals?.get(index);
    if (failure === null && refusal === undefined) return null;
    const detail = refusal ?? { index, field: null, code: failure!.code, message: failure!.message };
    const error = new FloodgateEventError(detail, this.batchId, this.events[index]!, failure ?? undefined);
    (this.#eventErrors ??= new Map()).set(index, error);
    return error;
  }

  resultAt(index: number): TrackResult {
    const error = this.errorAt(index);
    if (error !== null) throw error;
    const eventId = this.events[index]!.event_id;
    return { batchId: this.batchId, index, eventId: typeof eventId === 'string' ? eventId : null, status: this.status };
  }
}

/**
 * What `track()` returns: a thenable for the event's outcome. It costs one small object;
 * the promise behind it is made only when it is awaited (or `then`/`catch` called), so a
 * fire-and-forget caller pays nothing more and never meets an unhandled rejection. It has
 * `then`, `catch` and `finally`, so it goes wherever a Promise<TrackResult> does.
 */
export class TrackReceipt implements Promise<TrackResult> {
  readonly #batch: Batch;
  readonly #index: number;
  #outcome: Promise<TrackResult> | null = null;

  constructor(batch: Batch, index: number) {
    this.#batch = batch;
    this.#index = index;
  }

  then<A = TrackResult, B = never>(
    onFulfilled?: ((result: TrackResult) => A | PromiseLike<A>) | null,
    onRejected?: ((error: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.#promise().then(onFulfilled, onRejected);
  }

  catch<B = never>(onRejected?: ((error: unknown) => B | PromiseLike<B>) | null): Promise<TrackResult | B> {
    return this.#promise().catch(onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<TrackResult> {
    return this.#promise().finally(onFinally);
  }

  get [Symbol.toStringTag](): string {
    return 'TrackReceipt';
  }

  #promise(): Promise<TrackResult> {
    const batch = this.#batch;
    const index = this.#index;
    return (this.#outcome ??= batch.settled().then(() => batch.resultAt(index)));
  }
}

/** Owns the open batch, the ready FIFO, the in-flight slots and the retry timers. */
export class Batcher {
  readonly #settings: BatcherSettings;
  readonly #send: SendBatch;
  #open: Batch | null = null;
  #flushTimer: ReturnType<typeof setTimeout> | null = null;
  readonly #ready: Batch[] = [];
  readonly #unsettled = new Set<Batch>();
  #inFlight = 0;
  #queued = 0;
  #closed = false;
  readonly #counts = { tracked: 0, accepted: 0, duplicates: 0, failed: 0, batchesSent: 0, batchesRetried: 0 };

  constructor(settings: BatcherSettings, send: SendBatch) {
    this.#settings = settings;
    this.#send = send;
  }

  get closed(): boolean {
    return this.#closed;
  }

  track(event: TrackEvent): TrackReceipt {
    if (this.#closed) throw new FloodgateError('ERR_CLIENT_CLOSED', 'the client is closed: track() after close()');
    if (this.#queued >= this.#settings.queueEventsMax) throw new QueueFullError(this.#settings.queueEventsMax);
    if (event === null || typeof event !== 'object' || typeof event.event_type !== 'string') {
      throw new TypeError('track(event): event must be an object with a string event_type');
    }
    let json = JSON.stringify(event);
    // The timestamp is fixed here, once: the engine's key is (event_id, timestamp), so a
    // resent batch must carry the same one to be recognised as a duplicate.
    if (event.timestamp === undefined) json = `{"timestamp":${Date.now()},${json.slice(1)}`;
    let batch = this.#open;
    if (batch !== null && batch.chars + json.length + 1 > this.#settings.batchBytes) {
      this.#seal();
      batch = null;
    }
    batch ??= this.#openBatch();
    const index = batch.events.length;
    batch.parts.push(json);
    batch.events.push(event);
    batch.chars += json.length + 1;
    this.#queued++;
    this.#counts.tracked++;
    if (index + 1 >= this.#settings.batchEvents || batch.chars >= this.#settings.batchBytes) this.#seal();
    return new TrackReceipt(batch, index);
  }

  /** Seals the open batch and resolves once every batch sealed so far has its outcome. */
  async flush(): Promise<void> {
    this.#seal();
    await Promise.all(Array.from(this.#unsettled, (batch) => batch.settled()));
  }

  /** Stops taking events, then drains everything, retries included. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  stats(): ClientStats {
    return { ...this.#counts, queued: this.#queued, batchesInFlight: this.#inFlight };
  }

  #openBatch(): Batch {
    const batch = new Batch();
    this.#open = batch;
    this.#flushTimer = setTimeout(() => this.#seal(), this.#settings.flushIntervalMs);
    return batch;
  }

  #seal(): void {
    const batch = this.#open;
    if (batch === null) return;
    this.#open = null;
    if (this.#flushTimer !== null) clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    batch.batchId = this.#settings.randomUUID();
    batch.eventCount = batch.events.length;
    batch.eventsJson = `[${batch.parts.join(',')}]`;
    batch.parts.length = 0;
    batch.state = 'ready';
    this.#unsettled.add(batch);
    this.#ready.push(batch);
    this.#pump();
  }

  #pump(): void {
    while (this.#inFlight < this.#settings.batchesInFlightMax) {
      const batch = this.#ready.shift();
      if (batch === undefined) return;
      this.#inFlight++;
      batch.state = 'in-flight';
      this.#counts.batchesSent++;
      sendSafely(this.#send, batch).then(
        (ack) => this.#answered(batch, ack, null),
        (error: unknown) => this.#answered(batch, null, asBatchError(error)),
      );
    }
  }

  #answered(batch: Batch, ack: BatchAck | null, error: FloodgateBatchError | null): void {
    this.#inFlight--;
    const writeFailed = ack?.errors.find((detail) => detail.code === 'ERR_EVENT_WRITE_FAILED');
    if (writeFailed !== undefined) {
      // The engine answers 503 for these; an ack carrying one is still not a durable answer.
      error = new FloodgateBatchError(writeFailed.code, writeFailed.message, { retriable: true });
    }
    if (error === null) this.#settleAck(batch, ack!);
    else if (error.retriable) this.#retryLater(batch, error);
    else this.#settleFailure(batch, error);
    this.#pump();
  }

  #retryLater(batch: Batch, error: FloodgateBatchError): void {
    batch.attempt++;
    const { retry } = this.#settings;
    if (batch.attempt >= retry.attemptsMax) {
      const message = `gave up after ${batch.attempt} attempts; the last failed with ${error.code}: ${error.message}`;
      this.#settleFailure(batch, new FloodgateBatchError('ERR_CLIENT_RETRIES_EXHAUSTED', message, { status: error.status, retriable: false, cause: error }));
      return;
    }
    batch.state = 'backoff';
    this.#counts.batchesRetried++;
    setTimeout(() => {
      batch.state = 'ready';
      // Ahead of newer batches: the oldest events go first.
      this.#ready.unshift(batch);
      this.#pump();
    }, backoffDelayMs(batch.attempt, retry, error.retryAfterMs));
  }

  #settleAck(batch: Batch, answered: BatchAck): void {
    // An index outside the batch would be the engine's bug; it must not fail a stored event.
    const errors = answered.errors.filter((detail) => Number.isInteger(detail.index) && detail.index >= 0 && detail.index < batch.eventCount);
    const ack = { ...answered, errors };
    const storedCount = batch.eventCount - ack.errors.length;
    batch.status = ack.duplicates === 0 ? 'accepted' : ack.duplicates >= storedCount ? 'duplicate' : 'stored';
    if (ack.errors.length > 0) batch.refusals = new Map(ack.errors.map((detail) => [detail.index, detail]));
    this.#counts.accepted += ack.accepted;
    this.#counts.duplicates += ack.duplicates;
    this.#finish(batch, ack.errors.length === 0 ? null : Array.from(batch.refusals!.keys()));
  }

  #settleFailure(batch: Batch, error: FloodgateBatchError): void {
    batch.failure = error;
    this.#finish(batch, Array.from(batch.events.keys()));
  }

  #finish(batch: Batch, failedIndexes: number[] | null): void {
    this.#queued -= batch.eventCount;
    this.#unsettled.delete(batch);
    this.#counts.failed += failedIndexes?.length ?? 0;
    batch.markSettled();
    const onError = this.#settings.onError;
    if (onError === null || failedIndexes === null) return;
    for (const index of failedIndexes) {
      try {
        onError(batch.errorAt(index)!);
      } catch (error) {
        // The caller's bug must not stop the other events from settling; it surfaces as
        // an uncaught exception of its own, as it would have without the SDK.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
