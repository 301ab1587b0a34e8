/**
 * The answer bodies Floodgate sends for ingest requests, in one place: the v1 contract
 * (docs/api.md, "Answers") and the Day-15 webhook receiver's shapes that existing
 * senders parse. Each builder takes the same `IngestResult` so all routes count alike.
 */
import { EventOutcome } from '../event';
import type { EventError } from '../errors';
import type { PendingRequest } from './pending-requests';

export interface IngestResult {
  readonly requestId: string;
  /** Durable: events committed by this request. Async: events placed in the rings. */
  readonly accepted: number;
  readonly duplicates: number;
  /** Validation errors, then events the database refused or could not take. */
  readonly errors: readonly EventError[];
  /** Events that had no event_id and no idempotency key: not deduplicable. */
  readonly generatedIds: number;
  /** The id of the first event (single-event routes). */
  readonly firstEventId: string | null;
  /** Events whose write failed (database unavailable); their clients should retry. */
  readonly writeFailures: number;
  readonly totalEvents: number;
  readonly latencyMs: number;
}

/** Folds the actors' outcomes into per-event errors (dead-lettered or failed writes). */
export function outcomeErrors(request: PendingRequest): EventError[] {
  return request.failures.map(({ index, outcome }) =>
    outcome === EventOutcome.deadLettered
      ? { index, field: null, code: 'ERR_EVENT_DEAD_LETTERED', message: 'PostgreSQL refused this event; it was stored in dead_letters' }
      : { index, field: null, code: 'ERR_EVENT_WRITE_FAILED', message: 'the database could not take this event; retry it (dedupe makes the retry safe)' },
  );
}

export function v1Body(result: IngestResult, single: boolean): Record<string, unknown> {
  const errors = [...result.errors].sort((a, b) => a.index - b.index);
  const body: Record<string, unknown> = {
    request_id: result.requestId,
    accepted: result.accepted,
    duplicates: result.duplicates,
    rejected: errors.length,
    errors,
    queued: result.accepted + result.duplicates,
  };
  if (single) body.event_id = result.firstEventId;
  if (result.generatedIds > 0) {
    body.generated_ids = result.generatedIds;
    body.warnings = [
      `${result.generatedIds} event(s) had no event_id and the request no Idempotency-Key/X-Request-ID/request_id: ` +
        'Floodgate generated their ids, so resending this request would store them again',
    ];
  }
  return body;
}

/**
 * The Segment-spec routes' answer: `{"success": true}` is what their SDKs look for; the
 * counts and per-event errors ride beside it (src/segment). `success` is false only when
 * nothing of the body could be stored (answered 400).
 */
export function segmentBody(result: IngestResult): Record<string, unknown> {
  const stored = result.accepted + result.duplicates;
  const errors = [...result.errors].sort((a, b) => a.index - b.index);
  return { success: stored > 0 || errors.length === 0, request_id: result.requestId, accepted: result.accepted, duplicates: result.duplicates, rejected: errors.length, errors };
}

export function webhookEventBody(result: IngestResult, queuedAt: string): { status: number; body: Record<string, unknown> } {
  const error = result.errors[0];
  if (error !== undefined) {
    return { status: 400, body: { status: 'rejected', event_id: result.firstEventId, error: error.code, field: error.field, message: error.message } };
  }
  if (result.duplicates > 0) {
    return { status: 200, body: { status: 'ignored', reason: 'duplicate_event', event_id: result.firstEventId } };
  }
  return { status: 202, body: { status: 'accepted', event_id: result.firstEventId, queued_at: queuedAt, latency_ms: result.latencyMs } };
}

export function webhookBatchBody(result: IngestResult): Record<string, unknown> {
  return {
    status: 'processed',
    results: { accepted: result.accepted, duplicates: result.duplicates, errors: result.errors.length },
    total_events: result.totalEvents,
    latency_ms: result.latencyMs,
    request_id: result.requestId,
    error_details: [...result.errors].sort((a, b) => a.index - b.index),
  };
}
