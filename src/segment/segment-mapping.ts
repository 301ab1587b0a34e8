/**
 * The Segment-spec HTTP Tracking API's messages, mapped to Floodgate events
 * (docs/segment.md has the table, field by field; the decision:
 * docs/decisions/0026-segment-spec-calls-on-the-ingest-path.md). A body decodes to one item per message,
 * shaped as a Floodgate event, so validation, dedupe, the rings and the answer are the
 * ingest path's own; a message that cannot be mapped becomes an UndecodableItem in its
 * slot, reported and counted like a broken NDJSON line, and never sinks the others.
 *
 *   messageId                                   → event_id (an SDK's retries dedupe)
 *   track: event; else the call type            → event_type
 *   userId, else anonymousId                    → actor_id
 *   timestamp; else originalTimestamp, corrected by sentAt for a clock off by > 5 min → timestamp
 *   the key's name, else FLOODGATE_SEGMENT_SOURCE → source
 *   the rest of the message (what is not a column), the batch's context merged in → attributes
 */
import type { BulkLimits } from '../decode/decode-body';
import { decodeJsonDocument } from '../decode/decode-body';
import { describeValue, isPlainObject } from '../decode/client-input';
import { UndecodableItem } from '../decode/undecodable-item';
import type { ErrorCode, ErrorInfo, EventError } from '../errors';

export const segmentCalls = ['track', 'identify', 'page', 'screen', 'group', 'alias'] as const;
export type SegmentCall = (typeof segmentCalls)[number];

export interface SegmentReceipt {
  readonly receivedAtMs: number;
  /** The calling key's name, or the configured default for calls without a key. */
  readonly source: string;
}

export type DecodedSegment = { ok: true; items: unknown[]; lineErrors: EventError[] } | { ok: false; error: ErrorInfo };

/** Batch-level fields the spec defines; `writeKey` is a credential and is never stored. */
const batchFields = new Set(['batch', 'sentAt', 'context', 'integrations', 'writeKey']);
const sourceCharsMax = 64;

/** Decodes `POST /v1/batch` (`call` null) or one `POST /v1/{call}` body. */
export function decodeSegmentBody(call: SegmentCall | null, bytes: Buffer, limits: BulkLimits, receipt: SegmentReceipt): DecodedSegment {
  if (bytes.length === 0) return { ok: false, error: { code: 'ERR_INGEST_EMPTY', message: 'request body is empty' } };
  const decoded = decodeJsonDocument(bytes);
  if (!decoded.ok) return decoded;
  const body = decoded.value;
  if (!isPlainObject(body)) return badShape(`the body must be a JSON object${call === null ? ' {"batch": [...]}' : ''}; got ${describeValue(body)}`);
  const source = receipt.source.slice(0, sourceCharsMax);
  if (call !== null) {
    const lineErrors: EventError[] = [];
    return { ok: true, items: [mapOrMark(body, 0, call, {}, source, receipt.receivedAtMs, lineErrors)], lineErrors };
  }
  const messages = body.batch;
  if (!Array.isArray(messages)) return badShape(`"batch" must be an array of messages; got ${messages === undefined ? 'none' : describeValue(messages)}`);
  if (messages.length === 0) return { ok: false, error: { code: 'ERR_INGEST_EMPTY', message: 'request holds no events ("batch" is empty)' } };
  if (messages.length > limits.eventsPerRequestMax) {
    return { ok: false, error: { code: 'ERR_INGEST_TOO_MANY_EVENTS', message: `"batch" holds ${messages.length} messages; the limit is eventsPerRequestMax = ${limits.eventsPerRequestMax}` } };
  }
  const shared = batchShared(body);
  const lineErrors: EventError[] = [];
  const items = messages.map((message: unknown, index) => mapOrMark(message, index, null, shared, source, receipt.receivedAtMs, lineErrors));
  return { ok: true, items, lineErrors };
}

/** What a batch gives each of its messages: its sentAt, context and integrations, and any other field it carried. */
interface BatchShared {
  readonly sentAt?: unknown;
  readonly context?: unknown;
  readonly integrations?: unknown;
  readonly extra?: Record<string, unknown>;
}

function batchShared(body: Record<string, unknown>): BatchShared {
  const extra: Record<string, unknown> = {};
  for (const key of Object.keys(body)) if (!batchFields.has(key)) extra[key] = body[key];
  return { sentAt: body.sentAt, context: body.context, integrations: body.integrations, ...(Object.keys(extra).length > 0 ? { extra } : {}) };
}

function mapOrMark(message: unknown, index: number, call: SegmentCall | null, shared: BatchShared, source: string, receivedAtMs: number, lineErrors: EventError[]): unknown {
  const mapped = mapMessage(message, index, call, shared, source, receivedAtMs);
  if (!(mapped instanceof UndecodableItem)) return mapped;
  lineErrors.push(mapped.error);
  return mapped;
}

/** One message to a Floodgate event object, or the reason it cannot be one. */
export function mapMessage(message: unknown, index: number, call: SegmentCall | null, shared: BatchShared, source: string, receivedAtMs: number): Record<string, unknown> | UndecodableItem {
  const fail = (code: ErrorCode, field: string | null, text: string): UndecodableItem => new UndecodableItem({ index, field, code, message: text });
  if (!isPlainObject(message)) return fail('ERR_EVENT_NOT_OBJECT', null, `a message must be a JSON object; got ${describeValue(message)}`);
  const type = call ?? message.type;
  if (typeof type !== 'string' || !(segmentCalls as readonly string[]).includes(type)) {
    return fail(type === undefined ? 'ERR_EVENT_FIELD_MISSING' : 'ERR_EVENT_FIELD_TYPE', 'type', `"type" must be one of ${segmentCalls.join(', ')}; got ${type === undefined ? 'none' : JSON.stringify(type).slice(0, 64)}`);
  }
  let eventType: unknown = type;
  if (type === 'track') {
    eventType = message.event;
    if (typeof eventType !== 'string') return fail(eventType === undefined ? 'ERR_EVENT_FIELD_MISSING' : 'ERR_EVENT_FIELD_TYPE', 'event', 'a track call needs "event", a string naming what happened');
  }
  const actor = idText(message.userId) ?? idText(message.anonymousId);
  if (actor === null) return fail('ERR_EVENT_FIELD_MISSING', 'userId', 'a message needs "userId" or "anonymousId" (a string or number)');
  const timestamp = occurredAt(message, shared.sentAt, receivedAtMs);
  if (typeof timestamp === 'object') return fail('ERR_EVENT_TIMESTAMP_FORMAT', timestamp.field, timestamp.message);
  // What became a column is not stored twice (it is a third of a typical message's bytes,
  // and rows' bytes are what PostgreSQL spends on); everything else is kept as sent. Built
  // by copying, not by deleting: a deleted key turns the object slow to serialise.
  const event = type === 'track' ? 'event' : null;
  const actorKey = message.userId === actor ? 'userId' : message.anonymousId === actor ? 'anonymousId' : null;
  // A UTC timestamp is the column exactly; one with an offset keeps its text.
  const time = typeof timestamp === 'string' && timestamp === message.timestamp && timestamp.endsWith('Z') ? 'timestamp' : null;
  const attributes: Record<string, unknown> = call === null ? {} : { type };
  for (const key in message) {
    if (key !== 'messageId' && key !== event && key !== actorKey && key !== time) attributes[key] = message[key];
  }
  if (shared.context !== undefined) attributes.context = isPlainObject(shared.context) && isPlainObject(message.context) ? { ...shared.context, ...message.context } : (message.context ?? shared.context);
  if (shared.integrations !== undefined && message.integrations === undefined) attributes.integrations = shared.integrations;
  if (shared.sentAt !== undefined && message.sentAt === undefined) attributes.sentAt = shared.sentAt;
  if (shared.extra !== undefined) attributes.batch = shared.extra;
  return { event_id: message.messageId ?? null, event_type: eventType, source, actor_id: actor, timestamp, attributes };
}

/** SDKs send ids as strings; some send numbers, which are ids all the same. */
function idText(value: unknown): string | null {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return null;
}

/**
 * The event's time, as the spec's servers decide it: an explicit `timestamp` as sent;
 * else `originalTimestamp` moved by the device clock's error, which `sentAt` (the
 * device's clock at sending) against our receipt measures; else the receipt.
 */
function occurredAt(message: Record<string, unknown>, batchSentAt: unknown, receivedAtMs: number): string | number | { field: string; message: string } {
  if (message.timestamp !== undefined && message.timestamp !== null) {
    return typeof message.timestamp === 'string' || typeof message.timestamp === 'number' ? message.timestamp : { field: 'timestamp', message: '"timestamp" must be an ISO-8601 string' };
  }
  if (message.originalTimestamp === undefined || message.originalTimestamp === null) return new Date(receivedAtMs).toISOString();
  const original = timeOf(message.originalTimestamp);
  if (original === null) return { field: 'originalTimestamp', message: '"originalTimestamp" must be an ISO-8601 string' };
  const sentAtValue = message.sentAt ?? batchSentAt;
  if (sentAtValue === undefined || sentAtValue === null) return new Date(original).toISOString();
  const sentAt = timeOf(sentAtValue);
  if (sentAt === null) return { field: 'sentAt', message: '"sentAt" must be an ISO-8601 string' };
  // Within the tolerance the device's clock is taken as right and the time as sent: a
  // retry then carries the same time, which the primary key (event_id, occurred_at) needs
  // to dedupe it across restarts (docs/segment.md, "Time").
  if (Math.abs(receivedAtMs - sentAt) <= clockToleranceMs) return new Date(original).toISOString();
  return new Date(receivedAtMs - (sentAt - original)).toISOString();
}

/** A device clock this close to ours is not corrected (network time and SDK retries stay well inside it). */
export const clockToleranceMs = 5 * 60_000;

function timeOf(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

function badShape(message: string): { ok: false; error: ErrorInfo } {
  return { ok: false, error: { code: 'ERR_INGEST_BAD_SHAPE', message } };
}
