/**
 * The part of ingest that does not care how events arrived: validate each item, hand the
 * valid ones to the rings (all target rings or none), and report the outcome — at once
 * in async mode, after the actors' acks in durable mode. HTTP routes, dead-letter replay
 * and any later transport share it, so they count and dedupe alike.
 */
import type { AckMode, Config } from '../config/config';
import type { ValidEvent } from '../event';
import type { RawAttributes } from '../decode/decode-body';
import type { ErrorCode, EventError } from '../errors';
import { clockUs } from '../metrics/clock';
import type { PendingRequest, PendingRequests } from './pending-requests';
import { outcomeErrors, type IngestResult } from './responses';
import type { RingRouter } from './ring-router';
import { validateEvent, type ValidationContext } from '../validate/validate-event';

export interface IngestRequest {
  readonly requestId: string;
  /** Decoded items, one per event (not yet validated). */
  readonly items: readonly unknown[];
  /** Items the decoder already refused (e.g. a broken NDJSON line), by index. */
  readonly lineErrors: readonly EventError[];
  /** Where the items' attributes lie in the body, when the decoder could tell (JSON bulk bodies). */
  readonly rawAttributes?: RawAttributes | null;
  readonly idempotencyKey: string | null;
  readonly ackMode: AckMode;
  /** performance.now() when the request arrived, for latency_ms. */
  readonly startedAtMs: number;
}

export type IngestOutcome =
  | { readonly ok: true; readonly result: IngestResult }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

export interface PipelineDependencies {
  readonly config: Config;
  readonly router: RingRouter;
  readonly pending: PendingRequests;
  /** Returns an error while durable writes cannot succeed (circuit open), else null. */
  readonly writeBlocker?: () => { code: ErrorCode; message: string } | null;
  /** Counts what arrives and what is refused before the rings (src/metrics/engine-metrics.ts). */
  readonly observer?: IngestObserver;
}

export interface IngestObserver {
  eventsReceived(count: number): void;
  eventsRejected(code: ErrorCode, count: number): void;
}

export class IngestPipeline {
  readonly #deps: PipelineDependencies;

  constructor(deps: PipelineDependencies) {
    this.#deps = deps;
  }

  submit(request: IngestRequest, done: (outcome: IngestOutcome) => void): void {
    const { config, router, pending } = this.#deps;
    const receivedAtMs = Date.now();
    const context: ValidationContext = { receivedAtMs, idempotencyKey: request.idempotencyKey, limits: config, rawAttributes: request.rawAttributes ?? null };
    const validated = validateAll(request.items, request.lineErrors, context);
    const observer = this.#deps.observer;
    if (observer !== undefined) {
      observer.eventsReceived(request.items.length);
      for (const error of validated.errors) observer.eventsRejected(error.code, 1);
    }
    // The closure below lives until the commit (tens of ms), so it captures only what the
    // answer needs: capturing `request` or `validated` would keep every decoded item and
    // ValidEvent alive past a young-generation GC, promoting them into the old generation
    // (measured: that promoted garbage drove the engine's RSS saw-tooth under load).
    const base = { requestId: request.requestId, totalEvents: request.items.length, generatedIds: validated.generatedIds, firstEventId: validated.firstEventId };
    const { errors } = validated;
    const { startedAtMs } = request;
    const result = (settled: PendingRequest | null, accepted: number): IngestResult => {
      const fromOutcomes = settled === null ? [] : outcomeErrors(settled);
      return {
        ...base,
        accepted,
        duplicates: settled?.duplicates ?? 0,
        errors: fromOutcomes.length === 0 ? errors : [...errors, ...fromOutcomes],
        writeFailures: fromOutcomes.filter((error) => error.code === 'ERR_EVENT_WRITE_FAILED').length,
        latencyMs: elapsedMs(startedAtMs),
      };
    };
    if (validated.events.length === 0) return done({ ok: true, result: result(null, 0) });
    // Durable requests are refused at once while the circuit is open: they could only wait
    // and time out. Async requests still go into the rings (their events are written when
    // the database returns); a full ring then answers 503 as usual.
    const blocked = request.ackMode === 'durable' ? (this.#deps.writeBlocker?.() ?? null) : null;
    if (blocked !== null) {
      observer?.eventsRejected(blocked.code, validated.events.length);
      return done({ ok: false, ...blocked });
    }

    let timer: NodeJS.Timeout | undefined;
    const pendingRequest =
      request.ackMode === 'durable'
        ? pending.register(validated.events.length, (settled) => {
            clearTimeout(timer);
            done({ ok: true, result: result(settled, settled.committed) });
          })
        : null;
    const ticket = pendingRequest?.ticket ?? pending.issueTicket();
    // Receipt time in µs from the clock actors share, so commit latency is exact to the µs.
    if (!router.tryEnqueue(ticket, clockUs(), validated.indexes, validated.events)) {
      if (pendingRequest !== null) pending.forget(ticket);
      observer?.eventsRejected('ERR_INGEST_OVERLOADED', validated.events.length);
      return done({ ok: false, code: 'ERR_INGEST_OVERLOADED', message: 'the engine is at capacity (actor ring full); retry after the Retry-After delay' });
    }
    pending.countEnqueued(validated.events.length);
    if (pendingRequest === null) return done({ ok: true, result: result(null, validated.events.length) });
    timer = setTimeout(() => {
      pending.forget(ticket);
      done({ ok: false, code: 'ERR_INGEST_COMMIT_TIMEOUT', message: `events were queued but not committed within ackTimeoutMs (${config.ackTimeoutMs} ms); retry: dedupe makes it safe` });
    }, config.ackTimeoutMs);
  }

  submitAsync(request: IngestRequest): Promise<IngestOutcome> {
    return new Promise((resolve) => this.submit(request, resolve));
  }
}

interface Validated {
  readonly events: ValidEvent[];
  readonly indexes: number[];
  readonly errors: EventError[];
  readonly generatedIds: number;
  readonly firstEventId: string | null;
}

function validateAll(items: readonly unknown[], lineErrors: readonly EventError[], context: ValidationContext): Validated {
  const events: ValidEvent[] = [];
  const indexes: number[] = [];
  const errors: EventError[] = [...lineErrors];
  const brokenLines = lineErrors.length === 0 ? null : new Set(lineErrors.map((error) => error.index));
  let generatedIds = 0;
  let firstEventId: string | null = null;
  for (let index = 0; index < items.length; index++) {
    if (brokenLines?.has(index)) continue;
    const outcome = validateEvent(items[index], index, context);
    if (!outcome.ok) {
      errors.push(outcome.error);
      continue;
    }
    if (outcome.idGenerated) generatedIds++;
    if (index === 0) firstEventId = outcome.event.eventId;
    events.push(outcome.event);
    indexes.push(index);
  }
  return { events, indexes, errors, generatedIds, firstEventId };
}

function elapsedMs(startedAtMs: number): number {
  return Math.round((performance.now() - startedAtMs) * 1000) / 1000;
}
